"""Pretrain every method for a fixed small budget on PneumoniaMNIST; print kNN and linear-probe
AUROC on val for each, beside the frozen random-init encoder.

    MEDMNIST_ROOT=/work/shared/data/medmnist .venv/bin/python benchmarks/ssl_quality.py \
        --backbone smallcnn --epochs 5

Each method is composed from its real config file (`method=<name>`), with `dino` on the
multi-crop augmentation (2 global + `--local-views` local crops) and the others on
`--augmentation` (default `medical`, the project's default).
Label-using methods (supervised, triplet, supcon) pretrain on a stratified `--label-frac`
subset, as `train.py` would, for proportionally more epochs so that every method takes the
same number of optimiser steps; the probes are fit
on the features of the same labelled subset (`--probe-labels all`: the whole train split;
un-augmented, eval mode) and scored on val:
kNN (k=20, cosine, distance-weighted) and L2 logistic regression on standardised features.
This is a sanity benchmark (does each method learn anything at all in a few epochs?), not a
leaderboard: the budget is far below the papers'. With several `--seeds` (init, batch order,
augmentation and the labelled subset all change), each method is compared with the random
encoder of the same seed and the table gives means, ranges and how many seeds it won.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import get_class
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler

from medssl.configs import config_dir
from medssl.data.label_subset import labelled_subset
from medssl.data.medmnist_source import load_medmnist
from medssl.pretraining_setup import assemble_pretraining
from medssl.seeding import seed_everything
from medssl.training.device import resolve_precision
from medssl.training.online_probe import encode

CONF = config_dir()
METHODS = [
    "simclr",
    "vicreg",
    "sicova",
    "barlow",
    "byol",
    "moco",
    "mocov3",
    "dino",
    "triplet",
    "supcon",
    "supervised",
]


def probe_aurocs(train_x, train_y, val_x, val_y) -> tuple[float, float]:
    train_x, val_x = train_x.numpy(), val_x.numpy()
    knn = KNeighborsClassifier(n_neighbors=20, metric="cosine", weights="distance").fit(
        train_x, train_y
    )
    knn_auroc = roc_auc_score(val_y, knn.predict_proba(val_x)[:, 1])
    scaler = StandardScaler().fit(train_x)
    linear = LogisticRegression(C=0.1, max_iter=2000).fit(scaler.transform(train_x), train_y)
    linear_auroc = roc_auc_score(val_y, linear.predict_proba(scaler.transform(val_x))[:, 1])
    return float(knn_auroc), float(linear_auroc)


def run_method(name: str, args, seed: int, data, labelled, device, precision) -> dict:
    overrides = [
        f"method={name}",
        f"backbone={args.backbone}",
        "dataset=pneumoniamnist",
        *(
            ["augmentation=multicrop", f"augmentation.local_views.n_views={args.local_views}"]
            if name == "dino"
            else [f"augmentation={args.augmentation}"]
        ),
        f"scheduler.warmup_epochs={args.warmup_epochs}",
        *(args.override if name != "random" else []),  # the floor trains nothing
    ]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    cfg.seed, cfg.trainer.batch_size = seed, args.batch_size
    if get_class(cfg.method._target_).uses_labels:  # the same number of optimiser steps
        cfg.trainer.epochs = round(args.epochs * len(data.train) / len(labelled))
    else:
        cfg.trainer.epochs = args.epochs
    seed_everything(seed)
    job, _ = assemble_pretraining(cfg, data, labelled, device, precision, online_probe=False)
    method = job.method
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as run_dir:
        history = job.run(Path(run_dir), name, device)
    seconds = time.perf_counter() - started
    # The probes see the labelled subset (the label-efficient regime medssl is for) or, with
    # --probe-labels all, every training label.
    probe_idx = labelled if args.probe_labels == "labelled" else torch.arange(len(data.train))
    train_x = encode(method.encoder, data.train.images[probe_idx], device, precision).cpu()
    val_x = encode(method.encoder, data.val.images, device, precision).cpu()
    knn, linear = probe_aurocs(
        train_x, data.train.labels[probe_idx].numpy(), val_x, data.val.labels.numpy()
    )
    return {
        "method": name,
        "knn": knn,
        "linear": linear,
        "seconds": seconds,
        "loss": (history[0]["loss"], history[-1]["loss"]) if history else None,
        "collapsed": history[-1].get("collapse/collapsed") if history else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbone", default="smallcnn")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--warmup-epochs", type=float, default=1)
    parser.add_argument("--label-frac", type=float, default=0.1)
    parser.add_argument(
        "--augmentation", default="medical", help="preset for every method but dino (multicrop)"
    )
    parser.add_argument("--local-views", type=int, default=2, help="DINO's local crops")
    parser.add_argument(
        "--probe-labels",
        choices=["labelled", "all"],
        default="labelled",
        help="fit the probes on the --label-frac subset (default) or on every training label",
    )
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=[0],
        help="each method is compared with the random encoder of the same seed",
    )
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--methods", nargs="*", default=METHODS)
    parser.add_argument(
        "--override", nargs="*", default=[], help="extra Hydra overrides for every method"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    root = os.environ.get("MEDMNIST_ROOT", "~/.medmnist")
    data = load_medmnist(
        "pneumoniamnist", 28, root, False, positive_class=1, references=[], store_dir=None
    )
    device = torch.device("cpu")
    precision = resolve_precision(args.precision, device)
    # The stratified subset has the same size for every seed; only its members change.
    n_labelled = len(
        labelled_subset(data.train.labels, args.label_frac, args.seeds[0], data.class_names)
    )
    print(
        f"PneumoniaMNIST 28 px: {len(data.train)} train, {len(data.val)} val; backbone {args.backbone}, "
        f"{args.epochs} epochs, batch {args.batch_size}, {precision}, seeds {args.seeds}; label-using "
        f"methods see {n_labelled} labelled images; probes fit on "
        f"{'those' if args.probe_labels == 'labelled' else 'all train'} images' features.",
        flush=True,
    )

    table: dict[str, list[dict]] = {}
    for seed in args.seeds:
        labelled = labelled_subset(data.train.labels, args.label_frac, seed, data.class_names)
        floor = run_method("random", args, seed, data, labelled, device, precision)
        table.setdefault("random", []).append(floor)
        for name in args.methods:
            r = run_method(name, args, seed, data, labelled, device, precision)
            r["beats"] = r["knn"] > floor["knn"] and r["linear"] > floor["linear"]
            table.setdefault(name, []).append(r)
            print(
                f"  seed {seed} {name}: kNN {r['knn']:.4f}, linear {r['linear']:.4f} "
                f"(random {floor['knn']:.4f}, {floor['linear']:.4f}), {r['seconds']:.0f} s",
                flush=True,
            )
    print()
    print(
        "| method | kNN AUROC | linear AUROC | beats random (both) | loss first -> last epoch | collapsed | pretrain s |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, runs in table.items():
        print(f"| {name} | " + " | ".join(summary_cells(name, runs)) + " |")
    failures = [
        name
        for name, runs in table.items()
        if name != "random" and not all(r["beats"] for r in runs)
    ]
    seeds = "" if len(args.seeds) == 1 else f" on every seed of {args.seeds}"
    print(f"\nmethods not beating random on both metrics{seeds}: {failures or 'none'}")


def summary_cells(name: str, runs: list[dict]) -> list[str]:
    """One seed: its figures; several: mean (min-max) and the number of seeds won."""

    def spread(key: str) -> str:
        values = [r[key] for r in runs]
        mean = sum(values) / len(values)
        return (
            f"{mean:.4f}"
            if len(values) == 1
            else f"{mean:.4f} ({min(values):.4f}-{max(values):.4f})"
        )

    if name == "random":
        beats = "floor"
    elif len(runs) == 1:
        beats = "yes" if runs[0]["beats"] else "NO"
    else:
        won = sum(r["beats"] for r in runs)
        beats = f"{'yes' if won == len(runs) else 'NO'}, {won}/{len(runs)} seeds"
    losses = [r["loss"] for r in runs if r["loss"]]
    loss = (
        f"{sum(a for a, _ in losses) / len(losses):.4f} -> {sum(b for _, b in losses) / len(losses):.4f}"
        if losses
        else "-"
    )
    flags = [r["collapsed"] for r in runs if r["collapsed"] is not None]
    collapsed = str(any(flags)).lower() if flags else "-"
    seconds = sum(r["seconds"] for r in runs) / len(runs)
    return [spread("knn"), spread("linear"), beats, loss, collapsed, f"{seconds:.0f}"]


if __name__ == "__main__":
    main()
