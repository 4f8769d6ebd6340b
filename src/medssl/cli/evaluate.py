"""Re-evaluate a saved encoder without retraining it.

    python -m medssl.cli.evaluate ckpt=outputs/2026-01-01/12-00-00/encoder.pt dataset=breastmnist
    python -m medssl.cli.evaluate ckpt=PATH 'eval=[linear,finetune,knn]' eval_outputs.cam=true label_frac=0.05

`ckpt` is the `encoder.pt` a training run writes (backbone config, in_chans, input_size and the
weights). Everything else is the training config (conf/config.yaml): the dataset, the label
fraction and seed, the protocols (`eval=classifier` scores the head a supervised run saved, on
the dataset it was trained for). The stored-image transforms (CLAHE) of the run that made the
encoder are taken from its `config.yaml` next to the checkpoint when it is there, else from
`augmentation`. Results, figures and summary.md go to Hydra's output folder, which must not
hold a training run's results (they are never replaced: evaluate into a folder of its own).
"""

from __future__ import annotations

import logging
import re
import sys
import time
from pathlib import Path

import hydra
import torch
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from medssl.components import build, build_node
from medssl.config_schema import check_config
from medssl.configs import config_dir
from medssl.data.class_check import check_classes
from medssl.data.label_subset import check_label_frac, check_seed, labelled_subset
from medssl.data.prepare import prepare_dataset
from medssl.errors import MedsslError, run_or_exit
from medssl.evaluation.interruption import EvaluationStopped, stop_on_signals
from medssl.evaluation.run_summary import write_results
from medssl.evaluation.runner import evaluate_as_configured
from medssl.override_hints import override_hint
from medssl.results_record import results_record
from medssl.seeding import seed_everything
from medssl.study.run_record import config_hash, read_results, refusal, save_config
from medssl.training.checkpoint import differing_keys
from medssl.training.device import resolve_device, resolve_precision

log = logging.getLogger("medssl")


def run_folder(ckpt: Path) -> Path:
    """The run that wrote `ckpt`: a kept encoder (trainer.keep_epochs) lies in `encoders/`."""
    return ckpt.parent.parent if ckpt.parent.name == "encoders" else ckpt.parent


def sweep_subdir(ckpt: str, override_dirname: str) -> str:
    """A -m job's folder: `<run>/<checkpoint>` (`my-run/epoch_010`) then the other overrides, so
    that sweeping ckpt over kept encoders gives one readable folder each, not the whole path."""
    path = Path(ckpt)
    label = f"{run_folder(path).name}/{path.stem}"
    # A swept value holds no comma (the sweep splits on them), so ckpt's item ends at one.
    others = re.sub(r"(^|,)ckpt=[^,]*", "", override_dirname).strip(",")
    return f"{label},{others}" if others else label


OmegaConf.register_new_resolver("medssl_eval_subdir", sweep_subdir, replace=True)

# The training config plus one required key, so `ckpt=PATH` needs no `+`; the output folder is
# checked before Hydra writes into it (study.folder_guard).
ConfigStore.instance().store(
    name="evaluate",
    node={
        "defaults": ["config", "evaluate_schema", "_self_"],
        "ckpt": "???",
        "hydra": {
            "job": {"name": "evaluate"},
            "sweep": {"subdir": "${medssl_eval_subdir:${ckpt},${hydra.job.override_dirname}}"},
            "callbacks": {
                "folder_guard": {
                    "_target_": "medssl.study.folder_guard.FolderGuard",
                    "refusal": "medssl.cli.evaluate.folder_refusal",
                    "skip": None,
                }
            },
        },
    },
)


def folder_refusal(run_dir: Path, cfg: DictConfig) -> str | None:
    """Why the evaluation `cfg` must not write into `run_dir`: a training run's results there,
    or another evaluation's; None where the folder is new or this evaluation's own."""
    results = read_results(run_dir, quiet=True)
    if results is not None and "ckpt" not in results:
        return (
            f"{run_dir} holds the results of a training run, which medssl.cli.evaluate never "
            f"replaces; evaluate into a folder of its own (drop hydra.run.dir=, or e.g. "
            f"hydra.run.dir={Path(run_dir) / 'evaluations' / 'NAME'})."
        )
    return refusal(run_dir, cfg)


def load_encoder(path: str | Path) -> tuple[torch.nn.Module, dict]:
    path = Path(path).expanduser()
    if not path.is_file():
        raise MedsslError(f"ckpt={path} does not exist; pass the encoder.pt of a training run.")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # pickle, zip and torch errors all mean "not an encoder file"
        raise MedsslError(
            f"{path} could not be read as an encoder checkpoint ({type(error).__name__})."
        ) from None
    missing = [k for k in ("backbone", "in_chans", "input_size", "state_dict") if k not in saved]
    if missing:
        raise MedsslError(f"{path} lacks {missing}; it is not an encoder.pt written by train.py.")
    log.info("Building the backbone %s saves", path)
    encoder = build_node(
        saved["backbone"], "backbone", in_chans=saved["in_chans"], input_size=saved["input_size"]
    )
    try:
        encoder.load_state_dict(saved["state_dict"])
    except RuntimeError:  # torch lists every missing and unexpected tensor
        raise MedsslError(
            f"the weights in {path} do not fit the backbone it names "
            f"({saved['backbone'].get('name', saved['backbone']['_target_'])}); the file was "
            f"edited or assembled by hand, pass an encoder.pt written by train.py."
        ) from None
    return encoder, saved


def check_backbone_choice(cfg: DictConfig, saved: dict, ckpt: Path) -> None:
    """A `backbone=` given on the command line must be the encoder's own (it is what runs)."""
    chosen = OmegaConf.to_container(cfg.backbone, resolve=True)
    if chosen != saved["backbone"]:
        differing = differing_keys(saved["backbone"], chosen)
        raise MedsslError(
            f"{ckpt} holds a {saved['backbone'].get('name', saved['backbone']['_target_'])} "
            f"encoder but backbone {chosen.get('name', chosen['_target_'])} was asked for "
            f"(different {', '.join(differing)}); drop backbone= to evaluate the encoder as saved."
        )


def saved_head(saved: dict, dataset: str) -> dict:
    """The classifier head in encoder.pt, for the classifier protocol, when it predicts this
    dataset's labels (a linear layer, rebuilt from its weight's shape)."""
    if "head" not in saved or saved.get("head_dataset") != dataset:
        return {}
    out_features, in_features = saved["head"]["weight"].shape
    head = torch.nn.Linear(in_features, out_features)
    head.load_state_dict(saved["head"])
    return {"head": head, "head_info": {"selected_epoch": saved.get("selected_epoch")}}


def stored_image_augmentation(cfg: DictConfig, ckpt: Path):
    """The augmentation of the run that wrote `ckpt` (for its stored-image transforms)."""
    run_config = run_folder(ckpt) / "config.yaml"
    if run_config.is_file():
        saved = OmegaConf.load(run_config)
        if "augmentation" in saved:
            return build_node(saved.augmentation, "augmentation")
    return build(cfg, "augmentation")


def check_input_shape(data, saved: dict, ckpt: Path) -> None:
    if (data.channels, data.image_size) != (saved["in_chans"], saved["input_size"]):
        raise MedsslError(
            f"the encoder in {ckpt} takes {saved['in_chans']}-channel {saved['input_size']} px "
            f"images but dataset {data.name!r} has {data.channels}-channel {data.image_size} px "
            "ones; choose a matching dataset (and dataset.size)."
        )


def evaluate_checkpoint(cfg: DictConfig, run_dir: Path, backbone_chosen: bool = False) -> dict:
    """Evaluate `cfg.ckpt`; `backbone_chosen`: the command line named a backbone, which must
    then be the encoder's."""
    started = time.perf_counter()
    if OmegaConf.is_missing(cfg, "ckpt"):
        raise MedsslError(
            "pass the encoder to evaluate: python -m medssl.cli.evaluate ckpt=PATH/encoder.pt"
        )
    run_dir = Path(run_dir)
    refused = folder_refusal(run_dir, cfg)
    if refused:
        raise MedsslError(refused)
    label_frac = check_label_frac(cfg.label_frac)
    check_seed(cfg.seed, "seed")
    save_config(cfg, run_dir / "config.yaml")
    seed_everything(cfg.seed)
    device = resolve_device(cfg.trainer.device)
    precision = resolve_precision(cfg.trainer.precision, device)
    ckpt = Path(cfg.ckpt).expanduser()
    encoder, saved = load_encoder(ckpt)
    if backbone_chosen:
        check_backbone_choice(cfg, saved, ckpt)
    data = build(cfg, "dataset")
    check_input_shape(data, saved, ckpt)
    augmentation = stored_image_augmentation(cfg, ckpt)
    data = prepare_dataset(augmentation, data)
    labelled = labelled_subset(data.train.labels, label_frac, cfg.label_seed, data.class_names)
    check_classes(data, labelled)
    with stop_on_signals(f"the same command evaluates {ckpt} again from the start."):
        metrics = evaluate_as_configured(
            cfg,
            encoder,
            data,
            labelled,
            run_dir=run_dir,
            device=device,
            precision=precision,
            augmentation=augmentation,
            head=saved_head(saved, data.name),
        )
    results = results_record(
        metrics,
        data,
        labelled,
        identity={
            "ckpt": str(ckpt),
            "seed": cfg.seed,
            "label_seed": cfg.label_seed,
            "run/config_hash": config_hash(cfg),
        },
        method="from checkpoint",
        backbone=saved["backbone"].get("name", saved["backbone"]["_target_"]),
        label_frac=label_frac,
        device=device,
        precision=precision,
        total_seconds=time.perf_counter() - started,
    )
    write_results(run_dir, results)
    return results


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="evaluate")
def evaluate(cfg: DictConfig) -> float:
    run_or_exit(check_config, cfg)
    hydra_cfg = HydraConfig.get()
    backbone_chosen = any(o.lstrip("+~").startswith("backbone") for o in hydra_cfg.overrides.task)
    try:
        results = run_or_exit(
            evaluate_checkpoint, cfg, hydra_cfg.runtime.output_dir, backbone_chosen
        )
    except EvaluationStopped as stopped:
        message = str(stopped)
        log.warning("%s%s", message[:1].upper(), message[1:])
        raise SystemExit(stopped.exit_status) from None
    return results.get(f"val/{cfg.optimize_metric}", float("nan"))


def main() -> None:
    logging.raiseExceptions = False  # a full disk: the sentence, not one traceback per log line
    hint = override_hint(sys.argv[1:], "evaluate")
    if hint:
        log.error("%s", hint)
        sys.exit(1)
    evaluate()


if __name__ == "__main__":
    main()
