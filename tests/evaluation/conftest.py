"""Small synthetic tasks the evaluation tests share: separable blobs, and an imbalanced
five-class task with the fine-tuning that collapses on it."""

from __future__ import annotations

import numpy as np
import torch

from medssl.data.splits import DatasetSplits, Split
from medssl.evaluation.finetune import FineTune
from medssl.evaluation.protocol import EvalInputs
from medssl.models.small_cnn import SmallCNN
from tests.evaluation.finetune_settings import finetune


def blobs(rng, n: int, size: int = 16, channels: int = 1) -> Split:
    """Class 1: a bright square top-left, class 0: bottom-right, on a mid-grey noisy field."""
    y = rng.integers(0, 2, n)
    images = rng.integers(60, 120, (n, channels, size, size))
    for i, label in enumerate(y):
        r = 2 if label else size - 7
        images[i, :, r : r + 5, r : r + 5] = 200
    return Split(torch.as_tensor(images, dtype=torch.uint8), torch.as_tensor(y))


def blob_data(seed: int = 0, channels: int = 1, name: str = "blobs") -> DatasetSplits:
    rng = np.random.default_rng(seed)
    return DatasetSplits(
        name, "binary", ["left", "right"], *(blobs(rng, 64, channels=channels) for _ in range(3))
    )


def blob_inputs() -> EvalInputs:
    data = blob_data()
    torch.manual_seed(0)
    return EvalInputs(
        task="binary",
        num_classes=2,
        encoder=SmallCNN(in_chans=1, width=4, name="smallcnn", input_size=16),
        images={s: getattr(data, s).images for s in ("train", "val", "test")},
        labels={s: getattr(data, s).labels.numpy() for s in ("train", "val", "test")},
        device=torch.device("cpu"),
        batch_size=32,
    )


COUNTS = (50, 25, 12, 8, 5)  # about 100 labels, five classes, 10:1 imbalance
SPOTS = [(1, 1), (1, 7), (7, 1), (7, 7), (4, 4)]


def spot_images(rng, counts, size=12, contrast=50):
    """Class k: a faint 4x4 square at SPOTS[k] on noise."""
    y = np.repeat(np.arange(len(counts)), counts)
    x = rng.integers(0, 90, (len(y), 1, size, size))
    for i, k in enumerate(y):
        r, c = SPOTS[k]
        x[i, :, r : r + 4, c : c + 4] += contrast
    return torch.as_tensor(x, dtype=torch.uint8), y


def imbalanced_five_class(seed: int) -> EvalInputs:
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    splits = {
        "train": spot_images(rng, COUNTS),
        "val": spot_images(rng, (20,) * 5),
        "test": spot_images(rng, (20,) * 5),
    }
    return EvalInputs(
        task="multiclass",
        num_classes=5,
        encoder=SmallCNN(in_chans=1, width=4, name="smallcnn", input_size=12),
        images={s: v[0] for s, v in splits.items()},
        labels={s: v[1] for s, v in splits.items()},
        device=torch.device("cpu"),
        batch_size=128,
    )


def aggressive(probe, **changes) -> FineTune:
    """A learning rate high enough to wreck a randomly started head on these 100 labels."""
    settings = dict(
        epochs=6,
        batch_size=32,
        lr=1e-1,
        warmup_epochs=0,
        head_only_epochs=0,
        patience=6,
        class_weight="balanced",
        head="linear",
        probe=probe,
    )
    return finetune(**{**settings, **changes})
