"""A folder of unlabelled images (any layout, searched recursively) for pretraining only,
like EyePACS without its grades. It has a train split and nothing to evaluate on."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from medssl.data.image_files import IMAGE_SUFFIXES, list_images, load_split_images
from medssl.data.image_folder import existing_root
from medssl.data.intensity import IntensityMapping
from medssl.data.splits import ImageShape, Split
from medssl.errors import MedsslError

log = logging.getLogger(__name__)

NO_LABEL = -1


@dataclass
class UnlabelledImages(ImageShape):
    """Pretraining images only: `train.labels` are all `NO_LABEL`."""

    name: str
    train: Split
    intensity: IntensityMapping | None = None  # dataset.intensity; None: the dtype's range


def load_unlabelled_folder(
    root: str,
    *,
    size: int,
    channels: int,
    name: str | None,
    cache: bool,
    dtype: str,
    store_dir: str | None,
    intensity: IntensityMapping | None,
) -> UnlabelledImages:
    folder = existing_root(root)
    paths = list_images(folder, recursive=True)
    if not paths:
        raise MedsslError(
            f"{folder} holds no images ({', '.join(IMAGE_SUFFIXES)}) in it or its subfolders."
        )
    images, digests = load_split_images(
        {"train": paths},
        folder,
        size,
        channels,
        dtype=dtype,
        kind="unlabelled",
        cache=cache,
        store_dir=store_dir,
    )
    train = images["train"]
    log.info(
        "Loaded %d unlabelled images from %s at %d px (%s)", len(train), folder, size, train.dtype
    )
    return UnlabelledImages(
        name=name or folder.name,
        train=Split(
            train, torch.full((len(train),), NO_LABEL, dtype=torch.int64), digests["train"]
        ),
        intensity=intensity,
    )
