"""`runs.csv` (every run, every number) and `summary.csv` (every cell, every main metric), for
whoever redraws the figures or runs another test."""

from __future__ import annotations

import csv
import io
import json

from medssl.study.report.cells import Study
from medssl.study.report.collect import Run
from medssl.study.report.metrics import with_main_metrics

IDENTITY = ("folder", "dataset", "variant", "method", "label_frac", "seed", "status", "error")


def runs_csv(study: Study) -> str:
    """One row per run, finished or failed: its identity, then every results.json key."""
    keys = sorted(study.result_keys - set(IDENTITY))
    rows = []
    for run in sorted(study.runs, key=lambda r: r.folder):
        row = {**{k: _text(run.record.get(k)) for k in keys}, **_identity(study, run)}
        rows.append(row)
    return _csv([*IDENTITY, *keys], rows)


def summary_csv(study: Study, metrics: list[str]) -> str:
    """One row per cell; `<metric> ci95` is the t half-width at the study's confidence (95 %;
    ci90 at 90 %), empty from a single seed. The tables' metrics: `metrics` and, beside AUROC,
    the other main metrics of each dataset's task."""
    metrics = list(
        dict.fromkeys(
            key
            for dataset in study.datasets
            for key in with_main_metrics(metrics, study.task_of(dataset), study.result_keys)
        )
    )
    interval = f"ci{100 * study.confidence:g}"
    columns = ["dataset", "variant", "label_frac", "n_runs", "n_failed"]
    for metric in metrics:
        columns += [f"{metric} mean", f"{metric} {interval}", f"{metric} n"]
    rows = []
    for (dataset, variant, frac), cell in sorted(
        study.cells.items(), key=lambda item: (item[0][0], item[0][1].label, item[0][2])
    ):
        row = {
            "dataset": dataset,
            "variant": variant.label,
            "label_frac": _text(frac),
            "n_runs": str(len(cell.runs)),
            "n_failed": str(len(cell.failed)),
        }
        for metric in metrics:
            summary = cell.estimate(metric)
            row[f"{metric} mean"] = _text(summary.mean if summary else None)
            row[f"{metric} {interval}"] = _text(summary.half_width if summary else None)
            row[f"{metric} n"] = str(summary.n if summary else 0)
        rows.append(row)
    return _csv(columns, rows)


def _identity(study: Study, run: Run) -> dict[str, str]:
    return {
        "folder": run.folder,
        "dataset": run.dataset,
        "variant": study.variant(run).label,
        "method": run.method,
        "label_frac": _text(run.label_frac),
        "seed": _text(run.seed),
        "status": run.status,
        "error": run.error,
    }


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def _csv(columns: list[str], rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
