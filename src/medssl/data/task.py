"""The four kinds of label a dataset can have; every head, loss and metric branches on this."""

from __future__ import annotations

from enum import StrEnum


class Task(StrEnum):
    # A StrEnum equals its value, so configs and results.json keep the plain strings.
    BINARY = "binary"
    MULTICLASS = "multiclass"
    MULTILABEL = "multilabel"
    ORDINAL = "ordinal"  # multi-class with ordered grades: quadratic-weighted kappa

    @classmethod
    def parse(cls, value: str) -> Task:
        """The task named `value` (ours, or as MedMNIST's INFO names it: `ordinal-regression`),
        or a ValueError that lists the valid names."""
        if value in MEDMNIST_TASKS:
            return MEDMNIST_TASKS[value]
        try:
            return cls(value)
        except ValueError:
            raise ValueError(
                f"task must be one of {[t.value for t in cls]}, got {value!r}"
            ) from None


# MedMNIST's names for the same tasks (medmnist.INFO[<set>]["task"]): RetinaMNIST declares its
# five diabetic-retinopathy grades `ordinal-regression`, so it is judged as graded.
MEDMNIST_TASKS = {
    "binary-class": Task.BINARY,
    "multi-class": Task.MULTICLASS,
    "multi-label, binary-class": Task.MULTILABEL,
    "ordinal-regression": Task.ORDINAL,
}
