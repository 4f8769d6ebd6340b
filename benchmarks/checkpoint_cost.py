"""What do checkpoints cost on short epochs? One per epoch against one every 600 s.

    MEDMNIST_ROOT=... python benchmarks/checkpoint_cost.py [--epochs 10] [--backbone resnet18]

SimCLR on BreastMNIST-28 (546 training images: 2 steps of 256 per epoch) through the real
pretraining loop (`assemble_pretraining` + `PretrainingSetup.run`), fp32, once with
`trainer.checkpoint_every=null` (a checkpoint after every epoch, as before) and once with the
default 600 s (a checkpoint after the last epoch only, on runs this short). Rounds alternate
(A, B, A, B) so other load hits both alike; the medians of the whole pretraining's seconds and
their ratio are printed. Every figure comes from this one run.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from hydra import compose, initialize_config_dir

from medssl.components import build
from medssl.configs import config_dir
from medssl.data.label_subset import labelled_subset
from medssl.pretraining_setup import assemble_pretraining
from medssl.seeding import seed_everything
from medssl.training.device import resolve_device


def pretraining_seconds(every: str, args) -> float:
    overrides = [
        "method=simclr",
        f"backbone={args.backbone}",
        "dataset=breastmnist",
        f"trainer.epochs={args.epochs}",
        "trainer.precision=fp32",
        "trainer.online_probe=false",
        f"trainer.checkpoint_every={every}",
    ]
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    seed_everything(cfg.seed)
    device = resolve_device("auto")
    data = build(cfg, "dataset")
    labelled = labelled_subset(data.train.labels, 1.0, cfg.label_seed, data.class_names)
    job, _ = assemble_pretraining(cfg, data, labelled, device, "fp32")
    with tempfile.TemporaryDirectory() as run_dir:
        started = time.perf_counter()
        job.run(Path(run_dir), fingerprint=every, device=device)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    seconds: dict[str, list[float]] = {"null": [], "600": []}
    for _ in range(args.rounds):
        for every in seconds:
            seconds[every].append(pretraining_seconds(every, args))
            print(f"checkpoint_every={every}: {seconds[every][-1]:.1f} s", flush=True)
    per_epoch, by_time = (statistics.median(seconds[k]) for k in ("null", "600"))
    print(
        f"\nSimCLR {args.backbone}, BreastMNIST-28, {args.epochs} epochs of 2 steps: "
        f"a checkpoint per epoch {per_epoch:.1f} s, every 600 s {by_time:.1f} s; "
        f"per-epoch checkpoints take {1 - by_time / per_epoch:.0%} of pretraining "
        f"({per_epoch / by_time:.2f}x the time)"
    )


if __name__ == "__main__":
    main()
