"""Stratified train/val/test split by ratio for datasets that ship a single folder."""

from __future__ import annotations

import math

import numpy as np

from medssl.errors import MedsslError


def stratified_split(
    labels: np.ndarray, val_frac: float, test_frac: float, seed: int
) -> dict[str, np.ndarray]:
    """Sorted indices of `train`, `val` and `test`: each class's images are shuffled with
    `seed`, and `round(frac * n_class)` of them go to val, the next to test, the rest to train."""
    if val_frac < 0 or test_frac < 0 or val_frac + test_frac >= 1:
        raise MedsslError(
            f"dataset.val_frac and dataset.test_frac must be >= 0 and sum to less than 1, "
            f"got {val_frac} and {test_frac}."
        )
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        members = members[rng.permutation(len(members))]
        n_val = int(math.floor(val_frac * len(members) + 0.5))
        n_test = int(math.floor(test_frac * len(members) + 0.5))
        parts["val"].append(members[:n_val])
        parts["test"].append(members[n_val : n_val + n_test])
        parts["train"].append(members[n_val + n_test :])
    return {k: np.sort(np.concatenate(v)).astype(np.int64) for k, v in parts.items()}
