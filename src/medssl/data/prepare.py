"""A dataset with its stored-image transforms (CLAHE) applied once, before training and
evaluation, so the per-step views and every protocol see the same prepared images.

The prepared images are held in memory: a split past the resident budget's share of free RAM
is refused in one sentence rather than loaded whole behind the user's back.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from medssl.errors import MedsslError
from medssl.host_memory import available_ram_bytes

# Prepared splits may take at most this share of the RAM available when they are made.
PREPARED_RAM_SHARE = 0.5


def prepare_dataset(augmentation: nn.Module, data):
    """`data` (a dataclass with `train` and maybe `val`, `test` splits) with the pipeline's
    stored-image transforms applied to every split; unchanged when it has none."""
    prepare = getattr(augmentation, "prepare_images", None)
    if prepare is None or not getattr(augmentation, "stored", None):
        return data
    splits = {name: getattr(data, name) for name in ("train", "val", "test") if hasattr(data, name)}
    _check_preparable(data.name, list(augmentation.stored), splits)
    return dataclasses.replace(
        data,
        **{
            name: type(split)(prepare(split.images), split.labels) for name, split in splits.items()
        },
    )


def _check_preparable(name: str, transforms: list[str], splits: dict) -> None:
    which = ", ".join(f"augmentation.{t}" for t in transforms)
    if any(split.images.dtype != torch.uint8 for split in splits.values()):
        raise MedsslError(
            f"{which} works on 8-bit images, but {name} is stored as 16-bit; set "
            f"dataset.dtype=uint8 or {transforms[0]}=null."
        )
    nbytes = sum(split.nbytes for split in splits.values())
    room = int(available_ram_bytes() * PREPARED_RAM_SHARE)
    if nbytes > room:
        raise MedsslError(
            f"{which} prepares every image of {name} once, in memory: {nbytes / 2**30:.1f} GiB, "
            f"over the {room / 2**30:.1f} GiB this machine can spare; set "
            f"augmentation.{transforms[0]}=null for a set this large."
        )
