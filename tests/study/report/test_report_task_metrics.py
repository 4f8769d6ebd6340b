"""The report judges each task by its own metrics (metrics.MAIN_METRICS): a graded task by
quadratic kappa and mean absolute grade error beside AUROC, a multi-label one by macro average
precision beside AUROC, binary and multi-class by AUROC; each main metric gets its own paired
difference against supervised."""

from __future__ import annotations

import json

import medmnist
import pytest

from medssl.data.task import Task
from medssl.study.report import write_report
from medssl.study.report.metrics import (
    in_unit_interval,
    lower_is_better,
    main_metrics,
    with_main_metrics,
)
from tests.study.report.conftest import csv_rows, row_of, table_under

SEEDS = (0, 1, 2)
# Per (method, seed) at 10 % labels: SimCLR is ahead on every seed, in every main metric
# (a smaller grade error, a larger kappa and average precision).
VALUES = {
    "kappa": {"simclr": (0.60, 0.62, 0.65), "supervised": (0.50, 0.55, 0.52)},
    "grade_mae": {"simclr": (0.70, 0.72, 0.68), "supervised": (0.90, 0.85, 0.95)},
    "average_precision": {"simclr": (0.30, 0.32, 0.31), "supervised": (0.25, 0.27, 0.20)},
}
TASKS = {"retinamnist": "ordinal", "chestmnist": "multilabel", "breastmnist": "binary"}


def _sweep(root):
    for dataset, task in TASKS.items():
        for method in ("simclr", "supervised"):
            for seed in SEEDS:
                record = {
                    "config/method": method,
                    "config/dataset": dataset,
                    "task": task,
                    "label_frac": 0.1,
                    "seed": seed,
                    "label_seed": seed,
                    "test/linear/auroc": 0.7 + 0.01 * seed,
                    "test/linear/acc": 0.5,
                    # Every task's results hold kappa; only the graded one is judged by it.
                    "test/linear/kappa": VALUES["kappa"][method][seed],
                    "test/linear/ece_ts": 0.05,
                }
                if task == "ordinal":
                    record["test/linear/grade_mae"] = VALUES["grade_mae"][method][seed]
                if task == "multilabel":
                    value = VALUES["average_precision"][method][seed]
                    record["test/linear/average_precision"] = value
                path = root / dataset / f"method={method},seed={seed}"
                path.mkdir(parents=True)
                (path / "results.json").write_text(json.dumps(record))


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    _sweep(root)
    return root, write_report(root).read_text()


def _section(markdown: str, dataset: str) -> str:
    return markdown.split(f"## {dataset}\n", 1)[1].split("\n## ", 1)[0]


def _headings(section: str) -> list[str]:
    return [line[5:] for line in section.splitlines() if line.startswith("#### ")]


def test_a_graded_task_shows_kappa_and_grade_error_beside_auroc_each_paired(report):
    _, markdown = report
    section = _section(markdown, "retinamnist")
    assert _headings(section)[:7] == [
        "test/linear/auroc (AUROC)",
        "test/linear/auroc: paired difference against supervised",
        "test/linear/kappa (Cohen's kappa, quadratic-weighted on ordinal tasks)",
        "test/linear/kappa: paired difference against supervised",
        "test/linear/grade_mae (mean absolute grade error)",
        "test/linear/grade_mae: paired difference against supervised",
        "test/linear/acc (accuracy)",  # not a main metric: no paired table
    ]
    assert "test/linear/acc: paired" not in section
    # The grade error is better lower: SimCLR's smaller error wins every seed and is bold.
    paired = table_under(
        section, "#### test/linear/grade_mae: paired difference against supervised"
    )
    difference = sum(VALUES["grade_mae"]["simclr"]) / 3 - sum(VALUES["grade_mae"]["supervised"]) / 3
    assert row_of(paired, "simclr").startswith(f"| simclr | {difference:+.3f} ± ")
    assert row_of(paired, "simclr").endswith("(won 3/3) |")
    assert "mean absolute grade error is higher than the supervised baseline's (lower is" in section
    table = table_under(section, "#### test/linear/grade_mae (mean absolute grade error)")
    assert row_of(table, "simclr").startswith("| simclr | **0.700 ± ")
    kappa = table_under(section, "#### test/linear/kappa: paired difference against supervised")
    assert row_of(kappa, "simclr").endswith("(won 3/3) |")


def test_a_multi_label_task_shows_macro_average_precision_beside_auroc(report):
    _, markdown = report
    section = _section(markdown, "chestmnist")
    assert _headings(section)[:5] == [
        "test/linear/auroc (AUROC)",
        "test/linear/auroc: paired difference against supervised",
        "test/linear/average_precision (macro average precision)",
        "test/linear/average_precision: paired difference against supervised",
        "test/linear/acc (accuracy)",
    ]
    assert "kappa" not in section  # held by the runs, but not what a multi-label task is judged by


def test_a_binary_task_is_judged_by_auroc_as_before(report):
    _, markdown = report
    section = _section(markdown, "breastmnist")
    assert _headings(section)[:3] == [
        "test/linear/auroc (AUROC)",
        "test/linear/auroc: paired difference against supervised",
        "test/linear/acc (accuracy)",
    ]
    assert "kappa" not in section and "grade" not in section


def test_the_summary_carries_each_task_s_main_metrics(report):
    root, _ = report
    rows = {(r["dataset"], r["variant"]): r for r in csv_rows(root / "summary.csv")}
    assert float(rows[("retinamnist", "simclr")]["test/linear/grade_mae mean"]) == pytest.approx(
        0.70
    )
    assert rows[("breastmnist", "simclr")]["test/linear/grade_mae n"] == "0"
    assert float(
        rows[("chestmnist", "supervised")]["test/linear/average_precision mean"]
    ) == pytest.approx(sum(VALUES["average_precision"]["supervised"]) / 3)


def test_main_metrics_per_task_and_their_direction():
    assert main_metrics("ordinal") == ("auroc", "kappa", "grade_mae")
    assert main_metrics("multilabel") == ("auroc", "average_precision")
    assert main_metrics("binary") == main_metrics("multiclass") == ("auroc",)
    assert main_metrics(None) == ("auroc",)  # a results.json from before runs named their task
    assert lower_is_better("test/linear/grade_mae") and not in_unit_interval("test/knn/grade_mae")
    assert not lower_is_better("test/linear/kappa")
    assert not lower_is_better("test/linear/average_precision")


def test_main_metrics_follow_auroc_protocol_by_protocol_where_the_runs_hold_them():
    held = {"test/linear/kappa", "test/linear/grade_mae", "test/knn/kappa", "val/linear/kappa"}
    chosen = ["test/linear/auroc", "test/linear/acc", "test/knn/auroc", "val/linear/auroc"]
    assert with_main_metrics(chosen, "ordinal", held) == [
        "test/linear/auroc",
        "test/linear/kappa",
        "test/linear/grade_mae",
        "test/linear/acc",
        "test/knn/auroc",
        "test/knn/kappa",
        "val/linear/auroc",
        "val/linear/kappa",
    ]
    assert with_main_metrics(chosen, "binary", held) == chosen
    # A main metric asked for before AUROC keeps its place and is not repeated.
    assert with_main_metrics(["test/linear/kappa", "test/linear/auroc"], "ordinal", held) == [
        "test/linear/kappa",
        "test/linear/auroc",
        "test/linear/grade_mae",
    ]


def test_medmnist_s_own_task_names_reach_the_metrics_their_sets_are_judged_by():
    # RetinaMNIST declares `ordinal-regression`, ChestMNIST `multi-label, binary-class`.
    judged = {name: main_metrics(Task.parse(medmnist.INFO[name]["task"])) for name in TASKS}
    assert judged == {
        "retinamnist": ("auroc", "kappa", "grade_mae"),
        "chestmnist": ("auroc", "average_precision"),
        "breastmnist": ("auroc",),
    }
    assert Task.parse("ordinal-regression") is Task.ORDINAL and Task.parse("ordinal") == "ordinal"
    with pytest.raises(ValueError, match="task must be one of"):
        Task.parse("regression")


def test_a_graded_task_draws_its_label_efficiency_in_kappa_and_grade_error(tmp_path):
    for frac in (0.1, 1.0):
        for seed in SEEDS:
            record = {"config/method": "simclr", "config/dataset": "retinamnist", "task": "ordinal"}
            record |= {"label_frac": frac, "seed": seed, "label_seed": seed}
            record |= {"test/linear/auroc": 0.7, "test/linear/kappa": 0.5 + frac / 4}
            record |= {"test/linear/grade_mae": 0.9 - frac / 4, "test/linear/acc": 0.5}
            path = tmp_path / f"label_frac={frac},seed={seed}"
            path.mkdir()
            (path / "results.json").write_text(json.dumps(record))
    write_report(tmp_path)
    drawn = {p.name for p in tmp_path.glob("label_efficiency_*.png")}
    assert drawn == {f"label_efficiency_{m}.png" for m in ("auroc", "kappa", "grade_mae", "acc")}
