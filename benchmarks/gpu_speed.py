"""How fast does pretraining run with each speed option? The table of issue 11.

    MEDMNIST_ROOT=... python benchmarks/gpu_speed.py                    # on a GPU: the table
    MEDMNIST_ROOT=... python benchmarks/gpu_speed.py --backbone smallcnn --epochs 1 \
        --max-images 1024 --setups fp32 bf16                           # a CPU smoke run

SimCLR on PneumoniaMNIST-28 (ResNet-18 with the small-input stem, batch 256) through the real
pretraining loop (`assemble_pretraining` + `PretrainingSetup.run`), once per setup: fp32 without
TF32, fp32 with TF32, bf16, bf16 + channels-last, bf16 + channels-last + torch.compile. For each:
the first epoch's time (it holds cuDNN's algorithm search and compilation), the median time of
the later epochs, and pairs of views per second in those. Then the end-to-end step against the
model-only step on pre-made views (benchmarks/data_pipeline.py's measurement), for the default
setup. With `--feed-setup SETUP`, pairs per second with `trainer.feed=streamed` against
`resident` in that setup (PneumoniaMNIST-28 and BreastMNIST-64, median of the epochs after the
first). Every figure printed comes from this run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

from medssl.components import build
from medssl.configs import config_dir
from medssl.data.label_subset import labelled_subset
from medssl.pretraining_setup import assemble_pretraining
from medssl.seeding import seed_everything
from medssl.training.device import resolve_device

sys.path.insert(0, str(Path(__file__).resolve().parent))
from data_pipeline import step_seconds  # noqa: E402

CONF = config_dir()

SETUPS = {  # name: (precision, compile, channels_last, tf32)
    "fp32": ("fp32", False, False, False),
    "fp32+tf32": ("fp32", False, False, True),
    "bf16": ("bf16", False, False, True),
    "bf16+channels_last": ("bf16", False, True, True),
    "bf16+channels_last+compile": ("bf16", True, True, True),
}


def epoch_times(
    setup: str, args, device: torch.device, feed: str = "auto", dataset: str = "pneumoniamnist"
) -> list[dict]:
    precision, compiled, channels_last, tf32 = SETUPS[setup]
    overrides = [
        "method=simclr",
        f"backbone={args.backbone}",
        f"dataset={dataset}",
        *(["dataset.size=64"] if dataset == "breastmnist" else []),
        f"trainer.feed={feed}",
        f"trainer.epochs={args.epochs}",
        f"trainer.batch_size={args.batch_size}",
        f"trainer.precision={precision}",
        f"trainer.speed.compile={compiled}",
        f"trainer.speed.channels_last={channels_last}",
        f"trainer.speed.tf32={tf32}",
        "trainer.online_probe=false",
    ]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    seed_everything(cfg.seed)
    data = build(cfg, "dataset")
    if args.max_images:
        data.train = data.train.subset(torch.arange(min(args.max_images, len(data.train))))
    labelled = labelled_subset(data.train.labels, 1.0, cfg.label_seed, data.class_names)
    job, _ = assemble_pretraining(cfg, data, labelled, device, precision)
    with tempfile.TemporaryDirectory() as run_dir:
        return job.run(Path(run_dir), fingerprint=setup, device=device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--max-images", type=int, default=0, help="0: all 4,708 train images")
    parser.add_argument("--setups", nargs="*", default=list(SETUPS), choices=list(SETUPS))
    parser.add_argument("--ratio-repeats", type=int, default=7)
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--feed-setup", default="", help="also time trainer.feed=streamed against resident"
    )
    args = parser.parse_args()
    device = resolve_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(
        f"torch {torch.__version__} on {name} ({os.cpu_count()} cores); SimCLR {args.backbone}, "
        f"PneumoniaMNIST-28, batch {args.batch_size}, {args.epochs} epochs per setup"
    )
    print(f"\n{'setup':<28}{'epoch 1 s':>11}{'later epoch s':>15}{'pairs/s':>10}")
    for setup in args.setups:
        history = epoch_times(setup, args, device)
        later = history[1:] or history
        seconds = statistics.median(h["seconds"] for h in later)
        pairs = statistics.median(h["images_per_s"] for h in later)
        print(f"{setup:<28}{history[0]['seconds']:>11.2f}{seconds:>15.2f}{pairs:>10,.0f}")
    if args.feed_setup:
        print(
            f"\n{'feed (' + args.feed_setup + ')':<40}{'resident img/s':>16}{'streamed img/s':>16}{'ratio':>8}"
        )
        for dataset, label in (
            ("pneumoniamnist", "PneumoniaMNIST-28"),
            ("breastmnist", "BreastMNIST-64"),
        ):
            speed = {}
            for feed in ("resident", "streamed"):
                later = epoch_times(args.feed_setup, args, device, feed, dataset)[1:]
                speed[feed] = statistics.median(h["images_per_s"] for h in later)
            ratio = speed["streamed"] / speed["resident"]
            print(f"{label:<40}{speed['resident']:>16,.0f}{speed['streamed']:>16,.0f}{ratio:>8.2f}")
    if args.ratio_repeats:
        precision = "bf16" if device.type == "cuda" else "fp32"
        step = step_seconds(28, device, precision, args.ratio_repeats)
        print(
            f"\nend to end {step['end_to_end']:.4f} s, model only {step['model_only']:.4f} s per "
            f"step ({precision}): ratio {step['ratio']:.3f}x ({step['low']:.2f}-{step['high']:.2f})"
        )


if __name__ == "__main__":
    main()
