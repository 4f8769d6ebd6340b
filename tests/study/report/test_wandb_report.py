"""The W&B Report of a smoke sweep, built offline: its title from the preset's question, run
sets filtered to the sweep's group, the panels a reader would build, the summary run's tables;
nothing saved, its specification written beside the report."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import wandb_workspaces.reports.v2 as wr
from wandb_workspaces import expr

from medssl.study.report import compose_report
from medssl.study.report.wandb_report import (
    build_report,
    preset_question,
    publish_wandb_report,
    swept_keys,
)
from medssl.study.report.wandb_summary import table_rows
from tests.conftest import REPO
from tests.study.report.test_wandb_summary import offline_tracker, smoke_sweep

GROUP = "smoke/breastmnist"


def smoke_report(tmp_path):
    report = compose_report(smoke_sweep(tmp_path))
    tables = list(table_rows(report))
    built = build_report(report, project="medssl", entity="team", group=GROUP, table_keys=tables)
    return report, built, tables


def _filters(runset) -> dict:
    """A run set's string filter as parsed by wandb-workspaces: {(section, name): value}."""
    parsed = expr.expr_to_filters(runset.filters)
    leaves = parsed.filters if parsed.op == "AND" else [parsed]
    return {(leaf.key.section, leaf.key.name): leaf.value for leaf in leaves}


def test_the_report_of_a_smoke_sweep_has_its_blocks_panels_and_run_sets(tmp_path):
    report, built, tables = smoke_report(tmp_path)
    assert built.title == "smoke: Does the study machinery work here?"
    assert built.description.startswith("Does the study machinery work here?")
    assert (built.project, built.entity) == ("medssl", "team")
    kinds = [type(block).__name__ for block in built.blocks]
    assert kinds == [
        "H1",
        "MarkdownBlock",
        "H2",
        "PanelGrid",
        "PanelGrid",
        "PanelGrid",
        "H2",
        *["WeaveBlockSummaryTable"] * len(tables),
    ]

    main, *by_fraction = [b for b in built.blocks if isinstance(b, wr.PanelGrid)]
    assert [rs.name for rs in main.runsets] == ["simclr", "supervised"]
    for runset in main.runsets:
        assert _filters(runset) == {("run", "group"): GROUP, ("config", "method"): runset.name}
    scatter, parallel = main.panels
    assert isinstance(scatter, wr.ScatterPlot) and scatter.log_x
    assert scatter.x == wr.Config("label_frac") and scatter.y == wr.SummaryMetric(report.metrics[0])
    assert [c.metric for c in parallel.columns] == [
        wr.Config("label_frac"),
        wr.Config("method"),
        wr.Config("seed"),
        wr.SummaryMetric("test/linear/auroc"),
    ]
    for grid, frac in zip(by_fraction, (0.1, 1.0)):
        (runset,) = grid.runsets
        assert _filters(runset) == {("run", "group"): GROUP, ("config", "label_frac"): frac}
        (bars,) = grid.panels
        assert isinstance(bars, wr.BarPlot) and bars.groupby == wr.Config("method")
        assert bars.metrics == [wr.SummaryMetric("test/linear/auroc")]
    names = [b.table_name for b in built.blocks if isinstance(b, wr.WeaveBlockSummaryTable)]
    assert names == tables and "cells/breastmnist/test/linear/auroc" in names
    assert "paired/breastmnist/test/linear/auroc" in names


def test_offline_the_specification_is_written_and_nothing_is_saved(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)  # save() would need a login
    report, _, tables = smoke_report(tmp_path)
    path = publish_wandb_report(report, offline_tracker(), group=GROUP, table_keys=tables)
    assert path == report.out / "wandb_report.json"
    spec = json.loads(path.read_text())
    assert spec["type"] == "Report" and spec["title"].startswith("smoke: ")
    grid = next(b for b in spec["blocks"] if b["type"] == "PanelGrid")
    assert [p["type"] for p in grid["panels"]] == ["ScatterPlot", "ParallelCoordinatesPlot"]
    assert grid["panels"][0]["x"] == {"type": "Config", "name": "label_frac"}
    assert all(GROUP in rs["filters"] for rs in grid["runsets"])


def test_the_question_is_the_presets_opening_comment():
    question = preset_question("label_efficiency")
    assert question.startswith("Does self-supervised pretraining beat training from scratch")
    assert "python train.py" not in question  # the commands below it are left out
    assert preset_question("no_such_preset") is None and preset_question(None) is None


def test_swept_keys_are_those_the_command_lines_vary(tmp_path):
    study = compose_report(smoke_sweep(tmp_path)).study
    assert swept_keys(study.runs) == ["label_frac", "method", "seed"]


@pytest.mark.integration
def test_a_sweep_logs_its_report_at_its_end(tmp_path, medmnist_root):
    cmd = [
        sys.executable,
        str(REPO / "train.py"),
        "-m",
        "+experiment=smoke",
        "method=simclr",
        "label_frac=0.1,1.0",
        "seed=0",
        "logger=wandb",
        "logger.report_at_end=true",
        "trainer.online_probe=false",
        f"hydra.sweep.dir={tmp_path / 'smoke' / 'breastmnist'}",
    ]
    env = {**os.environ, "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    sweep = tmp_path / "smoke" / "breastmnist"
    assert (sweep / "report.md").is_file() and (sweep / "wandb_report.json").is_file()
    (summary_run,) = (sweep / "wandb_report" / "wandb").glob("offline-run-*")
    tables = list((summary_run / "files" / "media" / "table").rglob("*.table.json"))
    assert any("cells/breastmnist/test/linear/auroc" in p.as_posix() for p in tables)
    assert "Sweep report logged to the W&B group smoke/breastmnist" in proc.stdout + proc.stderr
