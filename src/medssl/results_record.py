"""The `results.json` record: one flat dict per run, built here for training runs (`run.py`)
and re-evaluations of a saved encoder (`evaluate.py`) alike, so the two cannot drift apart."""

from __future__ import annotations

import torch

from medssl.data.splits import DatasetSplits


def results_record(
    metrics: dict,
    data: DatasetSplits,
    labelled: torch.Tensor,
    *,
    identity: dict,
    method: str,
    backbone: str,
    label_frac: float,
    device: torch.device,
    precision: str,
    total_seconds: float,
    details: dict | None = None,
) -> dict:
    """The metrics, then `identity` (what names the job: its config choices and seeds, or the
    checkpoint), what was evaluated on what (method, backbone, dataset, task, label fraction
    and split sizes), how (device, precision), the caller's own `details` and the total time.
    A later key wins, so the checked `label_frac` replaces one in `identity`."""
    return {
        **metrics,
        **identity,
        "dataset": data.name,
        "task": data.task,
        "method": method,
        "backbone": backbone,
        "label_frac": label_frac,
        "device": str(device),
        "precision": precision,
        "n/labelled": len(labelled),
        "n/train": len(data.train),
        "n/val": len(data.val),
        "n/test": len(data.test),
        **(details or {}),
        "time/total_s": total_seconds,
    }


def reference_record(data: DatasetSplits) -> dict:
    """The dataset's published all-labels results at this image size, as
    `reference/<name>/<metric>` and `reference/<name>/source`."""
    return {
        f"reference/{reference['name']}/{key}": value
        for reference in data.references
        if reference.get("size") == data.image_size
        for key, value in reference.items()
        if key not in ("name", "size")
    }
