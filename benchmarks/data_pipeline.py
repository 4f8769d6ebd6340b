"""How fast is the on-device augmentation pipeline, and does it keep the model busy?

    MEDMNIST_ROOT=/work/shared/data/medmnist python benchmarks/data_pipeline.py

1. Data only, 28 px, SimCLR's recipe (crop + flip, colour jitter p=0.8, grayscale p=0.2 for
   colour, blur p=0.5): view pairs per second of our batched pipeline against the classic
   torchvision pipeline (a Dataset augmenting one PIL image at a time, DataLoader with 2
   workers), for 1-channel (PneumoniaMNIST when present) and 3-channel images (colour jitter on);
   rounds of the two alternate and the medians are compared.
2. One SSL training step end to end (SimCLR, ResNet-18 with the small-input stem, batch 256, two
   views: augmentation + forward + backward + optimiser step) against the same step on views
   made in advance (model only), at 28 and 64 px, on the training device. Steps of the two kinds
   alternate (A-B, B-A, ...) and each end-to-end step is paired with the model-only step next
   to it; the median paired ratio and its range are printed, so other load on the machine hits
   both alike. A step
   takes seconds on a CPU, so few fit in the time budget; the augmentation's own time per batch
   (median of many) is printed too, with the ratio it implies: model / (model + augmentation).

Every ratio printed comes from this one run. Bars (issue 3): data only >= 15x (1 channel) and
>= 8x (3 channels); end to end >= 0.95x model only on CPU, >= 0.8x on a GPU.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

from medssl.configs import config_dir
from medssl.training.device import autocast, resolve_device, resolve_precision

CONF = config_dir()
BATCH = 256


def config(overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


def load_images(channels: int, size: int, n: int) -> torch.Tensor:
    """Real MedMNIST images when the file is there (PneumoniaMNIST 28 px, BreastMNIST 64 px),
    else smooth random images; repeated or cut to `n`."""
    root = Path(os.environ.get("MEDMNIST_ROOT", "~/.medmnist")).expanduser()
    name = "pneumoniamnist.npz" if size == 28 else f"breastmnist_{size}.npz"
    if channels == 1 and (root / name).exists():
        with np.load(root / name) as npz:
            images = torch.from_numpy(npz["train_images"][:, None])
    else:
        g = torch.Generator().manual_seed(0)
        coarse = torch.rand(n, channels, size // 4, size // 4, generator=g)
        images = (torch.nn.functional.interpolate(coarse, size=size, mode="bilinear") * 255).to(
            torch.uint8
        )
    return images.repeat(-(-n // len(images)), 1, 1, 1)[:n]


# ---- 1. data only -------------------------------------------------------------------------


def torchvision_recipe(size: int, channels: int) -> T.Compose:
    """SimCLR's recipe in torchvision, matching conf/augmentation/simclr.yaml."""
    jitter = T.ColorJitter(0.8, 0.8, 0.8, 0.2) if channels == 3 else T.ColorJitter(0.8, 0.8)
    steps = [
        T.RandomResizedCrop(size, scale=(0.08, 1.0)),
        T.RandomHorizontalFlip(),
        T.RandomApply([jitter], p=0.8),
    ]
    if channels == 3:
        steps.append(T.RandomGrayscale(p=0.2))
    steps += [
        T.RandomApply([T.GaussianBlur(max(3, int(0.1 * size) | 1), (0.1, 2.0))], p=0.5),
        T.ToTensor(),
        T.Normalize([0.5] * channels, [0.5] * channels),
    ]
    return T.Compose(steps)


class TwoViewDataset(Dataset):
    """The classic pipeline: one PIL image at a time, two augmented views."""

    def __init__(self, images: torch.Tensor, transform: T.Compose) -> None:
        arrays = images.permute(0, 2, 3, 1).numpy()
        self.images = arrays[..., 0] if arrays.shape[-1] == 1 else arrays
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        image = Image.fromarray(self.images[i])
        return self.transform(image), self.transform(image)


def classic_pairs_per_s(images: torch.Tensor, channels: int) -> float:
    loader = DataLoader(
        TwoViewDataset(images, torchvision_recipe(images.shape[-1], channels)),
        batch_size=BATCH,
        shuffle=True,
        num_workers=2,
        drop_last=True,
    )
    batches = iter(loader)
    # Worker start-up is not throughput, and while it waits for the first batch each worker
    # prefetches `prefetch_factor` more: the clock starts once those are consumed.
    for _ in range(1 + loader.prefetch_factor * loader.num_workers):
        next(batches)
    started, pairs = time.perf_counter(), 0
    for first, _ in batches:
        pairs += len(first)
    return pairs / (time.perf_counter() - started)


def ours_pairs_per_s(images: torch.Tensor, device: torch.device) -> float:
    pipeline = instantiate(config(["augmentation=simclr"]).augmentation).to(device)
    images = images.to(device)
    generator = torch.Generator(device=device).manual_seed(0)
    pipeline(images[:BATCH], generator)  # warm-up
    steps = len(images) // BATCH
    sync(device)
    started = time.perf_counter()
    order = torch.randperm(len(images), generator=generator, device=device)
    for step in range(steps):
        pipeline(images[order[step * BATCH : (step + 1) * BATCH]], generator)
    sync(device)
    return steps * BATCH / (time.perf_counter() - started)


# ---- 2. training step ---------------------------------------------------------------------


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def step_seconds(size: int, device: torch.device, precision: str, repeats: int) -> dict[str, float]:
    """Median seconds of an end-to-end step, a model-only step (interleaved) and of making the
    views of one batch."""
    cfg = config(["method=simclr", "backbone=resnet18", "augmentation=simclr"])
    images = load_images(1, size, 4 * BATCH).to(device)
    backbone = instantiate(cfg.backbone, in_chans=1, input_size=size)
    method = instantiate(cfg.method)(backbone=backbone).to(device).train()
    optimizer = instantiate(cfg.optimizer)(method, batch_size=BATCH)
    augmentation = instantiate(cfg.augmentation).to(device)
    generator = torch.Generator(device=device).manual_seed(0)
    # Distinct pre-made batches, cycled: one reused tensor would stay cache-hot and flatter
    # the model-only step against the end-to-end one, whose views are fresh every step.
    premade = [augmentation(images[i * BATCH : (i + 1) * BATCH], generator) for i in range(4)]
    cycle = iter(range(10**9))

    def train_step(views):
        with autocast(device, precision):
            loss = method(views)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def augment():
        idx = torch.randint(len(images), (BATCH,), generator=generator, device=device)
        return augmentation(images[idx], generator)

    def end_to_end():
        train_step(augment())

    def model_only():
        train_step(premade[next(cycle) % len(premade)])

    def timed(fn) -> float:
        sync(device)
        started = time.perf_counter()
        fn()
        sync(device)
        return time.perf_counter() - started

    end_to_end(), model_only()  # warm-up: allocator, oneDNN/cuDNN kernel choice
    times = {"end_to_end": [], "model_only": []}
    for i in range(repeats):
        # A-B, B-A, ...: a drift in machine speed favours neither kind.
        order = ("end_to_end", "model_only") if i % 2 == 0 else ("model_only", "end_to_end")
        for kind in order:
            times[kind].append(timed(end_to_end if kind == "end_to_end" else model_only))
    # Each end-to-end step is compared with the model-only step next to it.
    ratios = [m / e for e, m in zip(times["end_to_end"], times["model_only"], strict=True)]
    augment_s = statistics.median(timed(augment) for _ in range(30))
    return {k: statistics.median(v) for k, v in times.items()} | {
        "augment": augment_s,
        "ratio": statistics.median(ratios),
        "low": min(ratios),
        "high": max(ratios),
    }


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):,.0f} ({min(values):,.0f}-{max(values):,.0f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-images", type=int, default=3 * 4608, help="images per data-only round")
    parser.add_argument("--rounds", type=int, default=3, help="data-only rounds of each side")
    parser.add_argument("--repeats", type=int, default=7, help="timed steps of each kind at 28 px")
    parser.add_argument(
        "--repeats-64", type=int, default=3, help="timed steps of each kind at 64 px"
    )
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    precision = resolve_precision("auto", device)
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads on {os.cpu_count()} cores "
        f"(load average {load}), device {device}, precision {precision}"
    )

    print(
        f"\n1. data only, 28 px, SimCLR recipe, view pairs/s (ours on {device}), median of "
        f"{args.rounds} alternated rounds (range in brackets)"
    )
    print(f"{'images':<12}{'torchvision, 2 workers':>28}{'ours':>26}{'ratio':>8}{'bar':>6}")
    for channels, bar in ((1, 15), (3, 8)):
        images = load_images(channels, 28, args.n_images)
        # Alternated rounds and medians: a burst of other load slows one round of one side,
        # not the figure.
        rounds = [
            (classic_pairs_per_s(images, channels), ours_pairs_per_s(images, device))
            for _ in range(args.rounds)
        ]
        classic, ours = ([r[i] for r in rounds] for i in (0, 1))
        c, o = statistics.median(classic), statistics.median(ours)
        print(
            f"{channels}-channel{'':<3}{_spread(classic):>28}{_spread(ours):>26}"
            f"{o / c:>7.1f}x{bar:>5}x"
        )

    print(
        f"\n2. SimCLR step, ResNet-18 small-input stem, batch {BATCH} x 2 views, {precision} on {device}"
    )
    print(
        f"{'size':<7}{'end to end s':>14}{'model only s':>14}{'ratio (range)':>22}"
        f"{'augment s':>11}{'implied':>9}{'bar':>6}"
    )
    bar = 0.95 if device.type == "cpu" else 0.8
    for size, repeats in ((28, args.repeats), (64, args.repeats_64)):
        t = step_seconds(size, device, precision, repeats)
        implied = t["model_only"] / (t["model_only"] + t["augment"])
        spread = f"{t['ratio']:.3f}x ({t['low']:.2f}-{t['high']:.2f})"
        print(
            f"{size} px{'':<2}{t['end_to_end']:>14.3f}{t['model_only']:>14.3f}{spread:>22}"
            f"{t['augment']:>11.4f}{implied:>8.3f}x{bar:>5}x"
        )


if __name__ == "__main__":
    main()
