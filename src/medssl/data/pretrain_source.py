"""Which images pretraining sees: `pretrain_dataset` when set, else the evaluation dataset.

Pretraining on one dataset and evaluating on another needs one encoder for both, so the two
must agree on channels and image size. Label-using methods pretrain on every labelled image of
another dataset (its labels, its task); an unlabelled folder cannot feed them.
"""

from __future__ import annotations

import torch

from medssl.data.splits import DatasetSplits, Split
from medssl.data.unlabelled_folder import UnlabelledImages
from medssl.errors import MedsslError


def check_evaluation_dataset(data) -> DatasetSplits:
    if not isinstance(data, DatasetSplits):
        raise MedsslError(
            f"dataset {data.name!r} has no labels to evaluate with; use it as "
            f"pretrain_dataset and choose a labelled dataset."
        )
    return data


def check_pretrain_source(
    source: DatasetSplits | UnlabelledImages, data: DatasetSplits, uses_labels: bool
) -> None:
    if (source.channels, source.image_size) != (data.channels, data.image_size):
        raise MedsslError(
            f"pretrain_dataset {source.name!r} has {source.channels}-channel {source.image_size} px images "
            f"but dataset {data.name!r} has {data.channels}-channel {data.image_size} px ones; set "
            f"pretrain_dataset.size and pretrain_dataset.channels to match (where the loader has them)."
        )
    if uses_labels and isinstance(source, UnlabelledImages):
        raise MedsslError(
            f"this method trains on labels, but pretrain_dataset {source.name!r} is unlabelled."
        )


def pretraining_split(
    source, data: DatasetSplits, labelled: torch.Tensor, uses_labels: bool
) -> Split:
    """The images (and labels) pretraining sees. Without a separate source, label-using methods
    see only the labelled subset of `data` and SSL methods every training image."""
    if source is None:
        return data.train.subset(labelled) if uses_labels else data.train
    return source.train
