"""Evaluate an encoder with each configured protocol; val picks, test is touched once.

`build_evaluation(cfg.eval)` turns the `eval` config into protocols, `ReportOptions` and the
`Analyses` (robustness, shift dataset, MC dropout); `evaluate_encoder` runs them, writes figures
under `run_dir/figures/` and returns flat metrics.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from torch import nn

from medssl.augment.pipeline import prepare_dataset
from medssl.data.splits import DatasetSplits
from medssl.errors import MedsslError
from medssl.evaluation.analyses import Analyses, run_analyses, spread_over_classes
from medssl.evaluation.mc_dropout import MCDropout
from medssl.evaluation.protocol import EvalInputs
from medssl.evaluation.report import ReportOptions, report_protocol
from medssl.evaluation.representations import cam_figure, embedding_figures
from medssl.evaluation.robustness import Robustness
from medssl.evaluation.shift import check_shift_dataset

log = logging.getLogger(__name__)


ANALYSIS_TYPES = {"robustness": Robustness, "mc_dropout": MCDropout}


def build_evaluation(eval_cfg) -> tuple[dict[str, object], ReportOptions, Analyses]:
    """Protocols by name (each with an `evaluate(inputs)` method), the report options and the
    analyses (`eval.robustness`, `eval.mc_dropout`, `eval/shift_dataset`, loaded here)."""
    built = {}
    for name, node in eval_cfg.items():
        log.info("Instantiating eval.%s <%s>", name, node.get("_target_"))
        try:
            built[name] = instantiate(node)
        except InstantiationException as error:
            if isinstance(error.__cause__, MedsslError):
                raise error.__cause__ from None
            # Hydra wraps what the target raised; a wrong key (eval.report.camm) reads as one sentence.
            raise MedsslError(f"eval.{name} could not be built: {error}") from None
    analyses = Analyses(shift=built.pop("shift_dataset", None))
    for name, obj in list(built.items()):
        for field, kind in ANALYSIS_TYPES.items():
            if isinstance(obj, kind):
                setattr(analyses, field, built.pop(name))
    options = [name for name, obj in built.items() if isinstance(obj, ReportOptions)]
    if len(options) != 1:
        raise MedsslError(
            f"the eval config needs exactly one report-options entry, found {options or 'none'}."
        )
    report = built.pop(options[0])
    not_protocols = [
        name for name, obj in built.items() if not callable(getattr(obj, "evaluate", None))
    ]
    if not_protocols:
        raise MedsslError(
            f"eval.{not_protocols[0]} is not an evaluation protocol (it has no evaluate method)."
        )
    if not built:
        raise MedsslError("no evaluation protocol selected; use e.g. eval=[linear,finetune,knn].")
    return built, report, analyses


def evaluate_encoder(
    encoder: nn.Module,
    data: DatasetSplits,
    labelled: torch.Tensor,
    protocols: dict[str, object],
    *,
    options: ReportOptions,
    run_dir: Path,
    device: torch.device,
    precision: str,
    batch_size: int = 512,
    analyses: Analyses | None = None,
    augmentation: nn.Module | None = None,
    head: nn.Module | None = None,
    head_info: dict | None = None,
) -> dict[str, float]:
    """Flat metrics (`test/linear/auroc`, ...) for every protocol; figures in `run_dir/figures`.

    `augmentation`: the pipeline whose stored-image transforms (CLAHE) `data` went through, so
    that a shift dataset gets them too. `head`: the classifier head the method trained on
    these labels (the `classifier` protocol scores it), with `head_info` about it."""
    analyses = analyses or Analyses()
    if analyses.shift is not None:
        shift = check_shift_dataset(analyses.shift, data)
        shift = prepare_dataset(augmentation, shift) if augmentation is not None else shift
        analyses = dataclasses.replace(analyses, shift=shift)
    if options.positive_class is None:  # the dataset's clinical positive unless overridden
        options = dataclasses.replace(options, positive_class=data.positive_class)
    figures_dir = Path(run_dir) / "figures"
    inputs = EvalInputs(
        task=data.task,
        num_classes=data.num_classes,
        encoder=encoder.to(device),
        images={
            "train": data.train.images[labelled],
            "val": data.val.images,
            "test": data.test.images,
        },
        labels={
            "train": data.train.labels[labelled].numpy(),
            "val": data.val.labels.numpy(),
            "test": data.test.labels.numpy(),
        },
        device=device,
        precision=precision,
        batch_size=batch_size,
        head=head,
        head_info=dict(head_info or {}),
    )
    test_images = data.test.images.numpy()
    started = time.perf_counter()
    for split in ("train", "val", "test"):
        inputs.features(split)
    results: dict[str, float] = {"time/features_s": time.perf_counter() - started}
    if data.task == "binary":
        results["positive_class"] = data.class_names[options.positive(2)]
    cam_model = None
    outputs = {}
    for name, protocol in protocols.items():
        log.info("Evaluating with the %s protocol on %d labelled images", name, len(labelled))
        started = time.perf_counter()
        out = protocol.evaluate(inputs)
        if out is None:  # the protocol logged why it does not apply to this run
            continue
        outputs[name] = out
        results.update(
            report_protocol(
                name,
                out,
                data.task,
                inputs.labels,
                test_images,
                data.class_names,
                options,
                figures_dir,
            )
        )
        results[f"time/eval_{name}_s"] = time.perf_counter() - started
        if cam_model is None and out.model is not None:
            cam_model = (name, out.model)
    started = time.perf_counter()
    results.update(
        run_analyses(analyses, outputs, results, data, options, run_dir, device, batch_size)
    )
    results["time/analyses_s"] = time.perf_counter() - started
    if options.figures:
        started = time.perf_counter()
        embedding_figures(
            inputs.features("test"),
            inputs.labels["test"],
            data.task,
            data.class_names,
            figures_dir,
            options.embedding_max_points,
            options.tsne_perplexity,
            options.tsne_max_iter,
        )
        results["time/embedding_figures_s"] = time.perf_counter() - started
    if options.cam:
        if cam_model is None:
            log.info(
                "Grad-CAM skipped: no protocol produced an image classifier (use linear or finetune)"
            )
        else:
            name, model = cam_model
            pick = spread_over_classes(inputs.labels["test"], options.cam_images, data.task)
            cam_figure(
                name,
                model,
                model[0],
                data.test.images[pick],
                inputs.labels["test"][pick],
                data.task,
                data.class_names,
                figures_dir,
                device,
            )
    return results
