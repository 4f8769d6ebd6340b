"""The sweep report in Weights & Biases: one run of the sweep's group (`job_type=report`) that
holds every table of the report as a `wandb.Table`, its figures as images, and `runs.csv`,
`summary.csv` and `report.html` as an artifact with one version per content, named by the sweep.

The tables are built from the study itself (cells, paired differences), not from the
markdown: a cell row has its mean, interval and seeds; a paired row its difference, interval
and the seeds the variant won. The run writes under `<report folder>/wandb_report/`; offline
(the logger config's default) `wandb sync` uploads it later. Then the W&B Report is built
(medssl.study.report.wandb_report): saved online, written as `wandb_report.json` offline.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from omegaconf import DictConfig

from medssl.components import build_node
from medssl.study.report import SweepReport
from medssl.study.report.cells import Study
from medssl.study.report.contents import baseline_variant
from medssl.study.report.metrics import lower_is_better, with_main_metrics
from medssl.study.report.stats import paired_difference
from medssl.study.report.variants import Variant
from medssl.tracking import WandbTracker, sweep_group

log = logging.getLogger(__name__)

REPORT_DIR = "wandb_report"  # the summary run's folder (its wandb files and run id)
CELL_COLUMNS = [
    "dataset",
    "variant",
    "method",
    "label_frac",
    "mean",
    "low",
    "high",
    "half_width",
    "n",
    "seeds",
    "n_failed",
]
PAIRED_COLUMNS = [
    "dataset",
    "variant",
    "baseline",
    "label_frac",
    "difference",
    "low",
    "high",
    "half_width",
    "n",
    "won",
    "seeds",
]


def report_tracker(logger: DictConfig) -> WandbTracker:
    """The tracker of the `logger=wandb` config (conf/logger/wandb.yaml and its overrides),
    its job type `report` whatever the sweep's runs use."""
    return build_node(logger, "logger", job_type="report")


def cell_rows(study: Study, dataset: str, metric: str) -> list[list]:
    """One row per variant and label fraction of the dataset (CELL_COLUMNS)."""
    rows = []
    for variant in study.variants_in(dataset):
        for frac in study.fractions_in(dataset):
            cell = study.cell(dataset, variant, frac)
            if cell is None:
                continue
            summary = cell.estimate(metric)
            seeds = [run.seed for run in cell.finished if run.value(metric) is not None]
            numbers = _interval(summary)
            rows.append(
                [
                    dataset,
                    variant.label,
                    variant.method,
                    frac,
                    *numbers,
                    _seeds(seeds),
                    len(cell.failed),
                ]
            )
    return rows


def paired_rows(study: Study, dataset: str, metric: str) -> list[list]:
    """Each variant minus its baseline (supervised; in an ablation without it, the recipe),
    seed by seed, per label fraction (PAIRED_COLUMNS)."""
    variants = study.variants_in(dataset)
    fallback = baseline_variant(variants) if variants else None
    has_supervised = any(v.is_supervised for v in variants)
    rows = []
    for variant in variants:
        baseline = study.baseline_of(dataset, variant) if has_supervised else fallback
        if baseline is None or baseline == variant:
            continue
        for frac in study.fractions_in(dataset):
            seeds = _paired_seeds(study, dataset, variant, baseline, frac, metric)
            pairs = study.paired_values(dataset, variant, baseline, frac, metric)
            paired = paired_difference(
                pairs, lower_is_better=lower_is_better(metric), confidence=study.confidence
            )
            if paired is None:
                continue
            numbers = _interval(paired.difference)
            rows.append(
                [dataset, variant.label, baseline.label, frac, *numbers, paired.won, _seeds(seeds)]
            )
    return rows


def table_rows(report: SweepReport) -> dict[str, tuple[list[str], list[list]]]:
    """Every table of the report by its W&B key: `cells/<dataset>/<metric>` and
    `paired/<dataset>/<metric>`, each (columns, rows)."""
    study, tables = report.study, {}
    for dataset in study.datasets:
        # The metrics report.md shows for this dataset: the task's main ones included.
        shown = with_main_metrics(report.metrics, study.task_of(dataset), study.result_keys)
        for metric in shown:
            if not study.has_metric(dataset, metric):
                continue
            tables[f"cells/{dataset}/{metric}"] = (CELL_COLUMNS, cell_rows(study, dataset, metric))
            paired = paired_rows(study, dataset, metric)
            if paired:
                tables[f"paired/{dataset}/{metric}"] = (PAIRED_COLUMNS, paired)
    return tables


def artifact_name(group: str) -> str:
    """`label_efficiency/breastmnist` -> `report-label_efficiency-breastmnist`."""
    return "report-" + re.sub(r"[^A-Za-z0-9_.-]+", "-", group).strip("-")


def publish_report(report: SweepReport, tracker: WandbTracker) -> str:
    """Logs the summary run, then makes (online) or writes down (offline) the W&B Report;
    returns the group the report went to."""
    from medssl.study.report.wandb_report import publish_wandb_report

    group = tracker.group or sweep_group(report.study.folder)
    tables = table_rows(report)
    log_summary_run(report, tracker, group, tables)
    publish_wandb_report(report, tracker, group=group, table_keys=list(tables))
    return group


def log_summary_run(
    report: SweepReport, tracker: WandbTracker, group: str, tables: dict[str, tuple]
) -> None:
    import wandb

    study = report.study
    config = {
        "sweep": str(study.folder),
        "confidence": study.confidence,
        "metrics": list(report.metrics),
        "datasets": study.datasets,
    }
    tracker.start(
        config,
        report.out / REPORT_DIR,
        name=f"report {group}",
        group=group,
        job_type="report",
        tags=["report"],
    )
    try:
        logged = {key: wandb.Table(columns=cols, data=rows) for key, (cols, rows) in tables.items()}
        for figure in report.figures:
            path = report.out / figure.filename
            logged[f"figures/{Path(figure.filename).stem}"] = wandb.Image(
                str(path), caption=figure.caption
            )
        tracker.log(logged)
        files = [path for path in report.files if path.name != "report.md"]
        tracker.log_files(artifact_name(group), "sweep-report", files, {"sweep": str(study.folder)})
    except BaseException:
        tracker.finish(None, failed=True)
        raise
    tracker.finish(
        {"runs": len(study.runs), "failed": len(study.failed), "cells": len(study.cells)}
    )
    log.info(
        "W&B summary run of %s (%d tables, %d figures) in %s",
        group,
        len(tables),
        len(report.figures),
        report.out / REPORT_DIR,
    )


def _paired_seeds(study: Study, dataset: str, variant: Variant, baseline: Variant, frac, metric):
    mine, theirs = study.cell(dataset, variant, frac), study.cell(dataset, baseline, frac)
    if mine is None or theirs is None:
        return []
    partners = {run.seeds for run in theirs.finished if run.value(metric) is not None}
    return [r.seed for r in mine.finished if r.value(metric) is not None and r.seeds in partners]


def _interval(summary) -> list:
    if summary is None:
        return [None, None, None, None, 0]
    if summary.half_width is None:
        return [summary.mean, None, None, None, summary.n]
    return [summary.mean, summary.low, summary.high, summary.half_width, summary.n]


def _seeds(seeds: list) -> str:
    return ",".join(str(s) for s in sorted(s for s in seeds if s is not None))
