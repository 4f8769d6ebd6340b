"""Which training images keep their labels: stratified, seeded, nested across fractions.

Each class's images are shuffled once with `label_seed`; a fraction takes the first
`round(frac * n_class)` of every class. Because the order does not depend on the fraction,
the 1 % subset lies inside the 5 % subset, which lies inside the 10 % subset.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch

from medssl.errors import MedsslError


def check_label_frac(label_frac: float) -> float:
    if not isinstance(label_frac, (int, float)) or isinstance(label_frac, bool):
        raise MedsslError(f"label_frac must be a number in (0, 1], got {label_frac!r}.")
    if not 0.0 < float(label_frac) <= 1.0:
        raise MedsslError(
            f"label_frac must lie in (0, 1] (1.0 means every label), got {label_frac}."
        )
    return float(label_frac)


def check_seed(seed, key: str) -> int:
    """A seed is a whole number from 0 up (numpy's generators take no negative seed)."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise MedsslError(f"{key} must be a whole number 0 or more, got {seed!r}.")
    return int(seed)


def _count(frac: float, n: int) -> int:
    # Round half up so the count is monotone in frac and never exceeds n.
    return min(n, int(math.floor(frac * n + 0.5)))


def labelled_subset(
    labels: torch.Tensor, label_frac: float, label_seed: int, class_names: list[str] | None = None
) -> torch.Tensor:
    """Sorted indices into the train split of the images whose labels are used.

    `labels` is `(N,)` for single-label tasks (stratified by class) or `(N, L)` for multi-label
    ones (a seeded random subset that must still hold a positive of every label).
    """
    frac = check_label_frac(label_frac)
    y = labels.cpu().numpy()
    rng = np.random.default_rng(check_seed(label_seed, "label_seed"))
    if frac == 1.0:
        return torch.arange(len(y))
    if y.ndim == 2:
        return _multilabel_subset(y, frac, rng, class_names, label_seed)
    chosen = []
    smallest = None
    for cls in np.unique(y):
        members = np.flatnonzero(y == cls)
        order = members[rng.permutation(len(members))]
        k = _count(frac, len(members))
        if k == 0:
            smallest = (cls, len(members))
        chosen.append(order[:k])
    # Raised after the loop: every class draws its shuffle, so the stream stays the same.
    if smallest is not None:
        n_min = min(int((y == c).sum()) for c in np.unique(y))
        name = _class_name(smallest[0], class_names)
        raise MedsslError(
            f"label_frac={frac} leaves class {name} ({smallest[1]} training images) without a "
            f"labelled image; the smallest label_frac that keeps one per class is "
            f"{_smallest_valid(n_min):.4g}."
        )
    return torch.from_numpy(np.sort(np.concatenate(chosen)))


def _multilabel_subset(y: np.ndarray, frac: float, rng, class_names, seed: int) -> torch.Tensor:
    order = rng.permutation(len(y))
    k = max(1, _count(frac, len(y)))
    chosen = np.sort(order[:k])
    missing = np.flatnonzero(y[chosen].sum(axis=0) == 0)
    if missing.size:
        names = ", ".join(_class_name(i, class_names) for i in missing[:3])
        # The smallest prefix of the fixed order that holds a positive of every label.
        seen = np.maximum.accumulate(y[order] > 0, axis=0).all(axis=1)
        need = int(np.argmax(seen)) + 1 if seen.any() else len(y)
        raise MedsslError(
            f"label_frac={frac} leaves label(s) {names} without a positive example; "
            f"the smallest label_frac that keeps one for label_seed={seed} is "
            f"{need / len(y):.4g}."
        )
    return torch.from_numpy(chosen)


def _smallest_valid(n_min: int) -> float:
    # floor(f * n + 0.5) >= 1  <=>  f >= 0.5 / n
    return 0.5 / n_min


def _class_name(index, class_names) -> str:
    index = int(index)
    if class_names and 0 <= index < len(class_names):
        return f"{index} ({class_names[index]!r})"
    return str(index)
