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
        """The task named `value`, or a ValueError that lists the valid names."""
        try:
            return cls(value)
        except ValueError:
            raise ValueError(
                f"task must be one of {[t.value for t in cls]}, got {value!r}"
            ) from None
