"""Choose the probe and fine-tuning defaults on val: class weighting, and the probe-initialised head.

    MEDMNIST_ROOT=/work/shared/data/medmnist .venv/bin/python benchmarks/finetune_defaults.py \
        --datasets breastmnist pneumoniamnist --seeds 0 1 2 --pretrain-epochs 5

Per dataset and seed: a small CNN (`backbone=smallcnn`) is pretrained with SimCLR for
`--pretrain-epochs` epochs on the train images (the project's `method=simclr` config and
default augmentation, `--pretrain-epochs 0`: the random-init encoder), a stratified
`--label-frac` subset of the train labels is drawn (seeded by the seed), and every arm is built
from the real `eval=[linear,finetune]` config with one override: the linear probe with
`class_weight` null / balanced, fine-tuning with `class_weight` null / balanced, each from the
probe's solution (`probe` on) or a random head (`eval.finetune.probe=null`).
Only val is read: the protocols get val in place of test, so test is never loaded into a
protocol. The numbers are val balanced ACC (argmax) and val AUROC; val also picks the probe's C
and the fine-tuning checkpoint, so they are optimistic alike for every arm (a comparison, not
an estimate of test performance).
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from medssl.configs import config_dir
from medssl.data.label_subset import labelled_subset
from medssl.evaluation.calibration import logits_to_probs
from medssl.evaluation.metrics import classification_metrics
from medssl.evaluation.protocol import EvalInputs
from medssl.pretraining_setup import assemble_pretraining
from medssl.seeding import seed_everything
from medssl.study.report.stats import paired_difference

CONF = config_dir()
ARMS = {
    "linear, class_weight null": ("linear", ["eval.linear.class_weight=null"]),
    "linear, class_weight balanced": ("linear", ["eval.linear.class_weight=balanced"]),
    "finetune, null, probe init": ("finetune", ["eval.finetune.class_weight=null"]),
    "finetune, balanced, probe init": ("finetune", ["eval.finetune.class_weight=balanced"]),
    "finetune, null, random head": (
        "finetune",
        ["eval.finetune.class_weight=null", "eval.finetune.probe=null"],
    ),
    "finetune, balanced, random head": (
        "finetune",
        ["eval.finetune.class_weight=balanced", "eval.finetune.probe=null"],
    ),
    # Follow-ups on the chosen arm: no head-only epochs (the probe is the head's warm-up), and
    # the checkpoint picked on val balanced ACC instead of val AUROC.
    "finetune, balanced, probe init, head_only_epochs 0": (
        "finetune",
        ["eval.finetune.class_weight=balanced", "eval.finetune.head_only_epochs=0"],
    ),
    "finetune, balanced, probe init, monitor balanced_acc": (
        "finetune",
        ["eval.finetune.class_weight=balanced", "eval.finetune.monitor=balanced_acc"],
    ),
}


def config(dataset: str, seed: int, overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(
            config_name="config",
            overrides=[
                "method=simclr",
                "backbone=smallcnn",
                f"dataset={dataset}",
                "eval=[linear,finetune]",
                f"seed={seed}",
                *overrides,
            ],
        )


def pretrained_encoder(dataset: str, data, labelled, seed: int, epochs: int, device):
    """SimCLR for `epochs` epochs (0: the random-init encoder) and the data as it saw it."""
    cfg = config(dataset, seed, [])
    cfg.trainer.epochs = max(epochs, 1)
    seed_everything(seed)
    job, data = assemble_pretraining(cfg, data, labelled, device, "fp32", online_probe=False)
    if epochs > 0:
        with tempfile.TemporaryDirectory() as run_dir:
            job.run(Path(run_dir), "simclr", device)
    return job.method.encoder.eval(), data


def val_inputs(data, labelled, encoder, device) -> EvalInputs:
    """The labelled subset, val, and val again in test's place: test is never read."""
    val_images, val_labels = data.val.images, data.val.labels.numpy()
    return EvalInputs(
        task=data.task,
        num_classes=data.num_classes,
        encoder=encoder,
        images={"train": data.train.images[labelled], "val": val_images, "test": val_images},
        labels={
            "train": data.train.labels[labelled].numpy(),
            "val": val_labels,
            "test": val_labels,
        },
        device=device,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["breastmnist", "pneumoniamnist"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--label-frac", type=float, default=0.1)
    parser.add_argument("--pretrain-epochs", type=int, default=5)
    parser.add_argument("--arms", nargs="*", default=list(ARMS))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    device = torch.device("cpu")
    root = os.environ.get("MEDMNIST_ROOT", "~/.medmnist")
    rows: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for dataset in args.datasets:
        raw = instantiate(config(dataset, 0, []).dataset, size=28, root=root, download=False)
        for seed in args.seeds:
            labelled = labelled_subset(raw.train.labels, args.label_frac, seed, raw.class_names)
            started = time.perf_counter()
            encoder, data = pretrained_encoder(
                dataset, raw, labelled, seed, args.pretrain_epochs, device
            )
            counts = np.bincount(data.train.labels[labelled].numpy(), minlength=data.num_classes)
            print(
                f"{dataset} seed {seed}: {len(labelled)} labels {counts.tolist()}, "
                f"SimCLR {args.pretrain_epochs} epochs in {time.perf_counter() - started:.0f} s",
                flush=True,
            )
            inputs = val_inputs(data, labelled, encoder, device)
            for arm in args.arms:
                protocol, overrides = ARMS[arm]
                cfg = config(dataset, seed, overrides)
                started = time.perf_counter()
                out = instantiate(cfg.eval[protocol]).evaluate(inputs)
                probs = logits_to_probs(data.task, out.val)
                m = classification_metrics(data.task, inputs.labels["val"], probs, logits=out.val)
                rows.setdefault((dataset, arm), []).append((m["balanced_acc"], m["auroc"]))
                print(
                    f"  {arm}: val balanced ACC {m['balanced_acc']:.3f}, AUROC {m['auroc']:.3f} "
                    f"({', '.join(f'{k} {v:g}' for k, v in out.params.items())}; "
                    f"{time.perf_counter() - started:.0f} s)",
                    flush=True,
                )
    print(f"\nval, mean (min-max) over seeds {args.seeds}, label_frac {args.label_frac}\n")
    print("| dataset | arm | val balanced ACC | val AUROC |")
    print("|---|---|---|---|")
    for (dataset, arm), values in rows.items():
        bal, auc = np.array(values).T
        print(
            f"| {dataset} | {arm} | {bal.mean():.3f} ({bal.min():.3f}-{bal.max():.3f}) "
            f"| {auc.mean():.3f} ({auc.min():.3f}-{auc.max():.3f}) |"
        )

    print_paired(rows, args.seeds)


# Each arm against the config's default of its protocol, seed by seed.
DEFAULT_ARMS = {
    "linear": "linear, class_weight balanced",
    "finetune": "finetune, balanced, probe init",
}


def print_paired(rows: dict[tuple[str, str], list[tuple[float, float]]], seeds) -> None:
    print(f"\nval, arm minus its protocol's default, paired over seeds {seeds}: mean ± 95 % t")
    print("| dataset | arm | vs | balanced ACC | AUROC |")
    print("|---|---|---|---|---|")
    for (dataset, arm), values in rows.items():
        default = DEFAULT_ARMS[ARMS[arm][0]]
        if arm == default or (dataset, default) not in rows:
            continue
        cells = []
        for metric in (0, 1):
            pairs = [(v[metric], d[metric]) for v, d in zip(values, rows[(dataset, default)])]
            paired = paired_difference(pairs, lower_is_better=False, confidence=0.95)
            half = paired.difference.half_width
            cells.append(
                f"{paired.difference.mean:+.3f}"
                + (f" ± {half:.3f}" if half is not None else "")
                + f" ({paired.won}/{len(pairs)} better)"
            )
        print(f"| {dataset} | {arm} | {default} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
