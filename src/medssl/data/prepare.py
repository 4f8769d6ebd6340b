"""A dataset with its stored-image transforms (CLAHE) applied once, before training and
evaluation, so the per-step views and every protocol see the same prepared images."""

from __future__ import annotations

import dataclasses

from torch import nn


def prepare_dataset(augmentation: nn.Module, data):
    """`data` (a dataclass with `train` and maybe `val`, `test` splits) with the pipeline's
    stored-image transforms applied to every split; unchanged when it has none."""
    prepare = getattr(augmentation, "prepare_images", None)
    if prepare is None or not getattr(augmentation, "stored", None):
        return data
    splits = {name: getattr(data, name) for name in ("train", "val", "test") if hasattr(data, name)}
    return dataclasses.replace(
        data,
        **{
            name: type(split)(prepare(split.images), split.labels) for name, split in splits.items()
        },
    )
