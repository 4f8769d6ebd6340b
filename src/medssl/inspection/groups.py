"""The rows an inspection counts, draws and histograms: one per class, or, for a multi-label
dataset, one per label (its positives) plus the images with no positive label; an unlabelled
folder is one row of every image."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from medssl.data.splits import DatasetSplits, Split
from medssl.data.task import Task

NO_POSITIVE = "(no positive label)"
UNLABELLED = "(unlabelled)"


def splits_of(data) -> dict[str, Split]:
    """`{"train": ..., "val": ..., "test": ...}`; an unlabelled folder has a train split only."""
    if isinstance(data, DatasetSplits):
        return {"train": data.train, "val": data.val, "test": data.test}
    return {"train": data.train}


@dataclass
class Groups:
    """`kind` is `class`, `label` (multi-label positives) or `unlabelled`; `masks[split]` is
    `(rows, N)` bool, row r holding the images of `names[r]`. Only the first `ranked` rows
    enter the imbalance ratio (the no-positive row of a multi-label set is not a label)."""

    kind: str
    names: list[str]
    masks: dict[str, torch.Tensor]
    ranked: int

    def counts(self, split: str) -> list[int]:
        return self.masks[split].sum(dim=1).tolist()

    def total_counts(self) -> list[int]:
        return [sum(column) for column in zip(*(self.counts(s) for s in self.masks))]

    def imbalance(self, counts: list[int]) -> float | None:
        """Largest over smallest count of the ranked rows; None when one of them is empty."""
        ranked = counts[: self.ranked]
        return max(ranked) / min(ranked) if min(ranked) > 0 else None


def row_masks(labels: torch.Tensor, kind: str, n_classes: int) -> torch.Tensor:
    if kind == "unlabelled":
        return torch.ones(1, len(labels), dtype=torch.bool)
    if kind == "label":
        positives = labels.bool().T  # (labels, N)
        return torch.cat([positives, ~positives.any(dim=0, keepdim=True)])
    return labels.view(1, -1) == torch.arange(n_classes).view(-1, 1)


def groups_of(data) -> Groups:
    splits = splits_of(data)
    if not isinstance(data, DatasetSplits):
        kind, names = "unlabelled", [UNLABELLED]
    elif data.task == Task.MULTILABEL:
        kind, names = "label", [*data.class_names, NO_POSITIVE]
    else:
        kind, names = "class", list(data.class_names)
    n_classes = len(names)
    masks = {name: row_masks(split.labels.cpu(), kind, n_classes) for name, split in splits.items()}
    ranked = n_classes - 1 if kind == "label" else n_classes
    return Groups(kind=kind, names=names, masks=masks, ranked=ranked)
