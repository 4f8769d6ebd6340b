"""Whether a dataset's labels can be evaluated, checked before anything pretrains.

A classifier needs two classes among the labelled training images, val needs every class to
pick hyper-parameters and thresholds, and test needs every class to report AUROC. A one-class
folder would otherwise pretrain for hours and then fail inside scikit-learn. Where a metric
stays defined without a class (the macro average of a multi-class or multi-label task over
the classes present), a missing class is a warning instead.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from medssl.data.splits import DatasetSplits
from medssl.data.task import Task
from medssl.errors import MedsslError

log = logging.getLogger(__name__)

# What each evaluation split is for, for the sentence that says why a class is needed there.
USE = {
    "val": "val selects hyper-parameters and operating points by AUROC",
    "test": "test AUROC",
}


def check_classes(data: DatasetSplits, labelled: torch.Tensor) -> None:
    """Refuse (MedsslError) labels that cannot be evaluated; warn about a class missing where
    the metrics stay defined without it. `labelled`: indices of the labelled training images."""
    for name in ("train", "val", "test"):
        if len(getattr(data, name)) == 0:
            raise MedsslError(f"the {name} split of dataset {data.name!r} holds no image.")
    if data.task == Task.MULTILABEL:
        _check_multilabel(data, labelled)
        return
    if data.num_classes < 2:
        which = (
            f"only class {_names(range(data.num_classes), data)}"
            if data.num_classes
            else "no class"
        )
        raise MedsslError(
            f"dataset {data.name!r} has {which}; a classifier needs images of at least two classes."
        )
    train = data.train.labels[labelled].cpu().numpy()
    missing = _missing(train, data.num_classes)
    if missing:
        raise MedsslError(
            f"the {len(train)} labelled training images of dataset {data.name!r} hold no image "
            f"of class {_names(missing, data)}; every class needs labelled training images."
        )
    for split in ("val", "test"):
        labels = getattr(data, split).labels.cpu().numpy()
        missing = _missing(labels, data.num_classes)
        if not missing:
            continue
        present = data.num_classes - len(missing)
        where = f"the {split} split of dataset {data.name!r} ({len(labels)} images)"
        if present < 2 or data.task == Task.BINARY:
            raise MedsslError(
                f"{where} holds no image of class {_names(missing, data)}, but {USE[split]}, "
                f"which needs every class; give {split} images of each class."
            )
        log.warning(
            "%s holds no image of class %s; its macro-averaged metrics cover the %d classes present",
            where,
            _names(missing, data),
            present,
        )


def _check_multilabel(data: DatasetSplits, labelled: torch.Tensor) -> None:
    train = data.train.labels[labelled].cpu().numpy()
    empty = np.flatnonzero(train.sum(axis=0) == 0)
    if empty.size:
        raise MedsslError(
            f"label {_names(empty, data)} of dataset {data.name!r} has no positive among the "
            f"{len(train)} labelled training images; every label needs one."
        )
    for split in ("val", "test"):
        labels = getattr(data, split).labels.cpu().numpy()
        positives = labels.sum(axis=0)
        undefined = np.flatnonzero((positives == 0) | (positives == len(labels)))
        where = f"the {split} split of dataset {data.name!r}"
        if undefined.size == labels.shape[1]:
            raise MedsslError(
                f"no label of {where} has both positives and negatives, but {USE[split]}, "
                f"which needs them."
            )
        if undefined.size:
            log.warning(
                "%s has only positives or only negatives for label %s; its mean AUROC leaves it out",
                where,
                _names(undefined, data),
            )


def _missing(labels: np.ndarray, num_classes: int) -> list[int]:
    return sorted(set(range(num_classes)) - {int(v) for v in np.unique(labels)})


def _names(indices, data: DatasetSplits) -> str:
    names = [repr(data.class_names[i]) if 0 <= i < data.num_classes else str(i) for i in indices]
    shown = ", ".join(names[:5])
    return shown + (f" and {len(names) - 5} more" if len(names) > 5 else "")
