"""The sweep report in W&B, offline: one `job_type=report` run of the sweep's group holding the
tables (read back from the run's own files), the figures and the report files as an artifact,
and no API key anywhere."""

from __future__ import annotations

import json
import math

import pytest
from omegaconf import OmegaConf

from medssl.cli.report import main
from medssl.study.report import compose_report, save_report
from medssl.study.report.wandb_summary import (
    CELL_COLUMNS,
    PAIRED_COLUMNS,
    artifact_name,
    cell_rows,
    paired_rows,
    publish_report,
    report_tracker,
)
from tests.conftest import CONF
from tests.study.report.conftest import AUROCS, write_job

FAKE_KEY = "0123456789abcdef0123456789abcdef01234567"  # 40 characters, like a real key
T_975_2 = 4.302653  # t_{0.975, 2}: the 95 % Student-t quantile for 3 seeds


def smoke_sweep(root):
    """`+experiment=smoke`-shaped results: simclr and supervised at 10 % and all labels, 3 seeds,
    in multirun/smoke/breastmnist (W&B group smoke/breastmnist)."""
    sweep = root / "multirun" / "smoke" / "breastmnist"
    for (method, frac), values in AUROCS.items():
        for seed, auroc in enumerate(values):
            overrides = ("+experiment=smoke", f"method={method}", f"label_frac={frac}")
            folder = f"label_frac={frac},method={method},seed={seed}"
            path = write_job(
                sweep, folder, method=method, frac=frac, seed=seed, auroc=auroc, overrides=overrides
            )
            record = json.loads((path / "results.json").read_text())
            record["config/experiment"] = "smoke"
            (path / "results.json").write_text(json.dumps(record))
    return sweep


def offline_tracker(**changes):
    logger = OmegaConf.load(CONF / "logger" / "wandb.yaml")
    return report_tracker(OmegaConf.merge(logger, {"mode": "offline", **changes}))


def _t_interval(values):
    n, mean = len(values), sum(values) / len(values)
    s = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return mean, T_975_2 * s / math.sqrt(n)


def test_rows_hold_each_cells_mean_interval_and_seeds_and_each_pairs_wins(tmp_path):
    study = compose_report(smoke_sweep(tmp_path)).study
    rows = {
        (r[1], r[3]): dict(zip(CELL_COLUMNS, r))
        for r in cell_rows(study, "breastmnist", "test/linear/auroc")
    }
    mean, half = _t_interval(AUROCS[("simclr", 0.1)])
    cell = rows[("simclr", 0.1)]
    assert cell["mean"] == pytest.approx(mean) and cell["half_width"] == pytest.approx(half)
    assert cell["low"] == pytest.approx(mean - half) and cell["high"] == pytest.approx(mean + half)
    assert (cell["n"], cell["seeds"], cell["n_failed"]) == (3, "0,1,2", 0)

    paired = [
        dict(zip(PAIRED_COLUMNS, r)) for r in paired_rows(study, "breastmnist", "test/linear/auroc")
    ]
    assert [(p["variant"], p["baseline"], p["label_frac"]) for p in paired] == [
        ("simclr", "supervised", 0.1),
        ("simclr", "supervised", 1.0),
    ]
    differences = [a - b for a, b in zip(AUROCS[("simclr", 1.0)], AUROCS[("supervised", 1.0)])]
    mean, half = _t_interval(differences)
    assert paired[1]["difference"] == pytest.approx(mean)
    assert paired[1]["half_width"] == pytest.approx(half)
    assert (paired[1]["won"], paired[1]["n"], paired[1]["seeds"]) == (1, 3, "0,1,2")


def test_the_summary_run_holds_tables_figures_and_the_report_artifact(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    sweep = smoke_sweep(tmp_path)
    report = compose_report(sweep)
    save_report(report)
    assert publish_report(report, offline_tracker()) == "smoke/breastmnist"

    runs = sorted((sweep / "wandb_report" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    files = runs[0] / "files"
    tables = {
        p.relative_to(files / "media" / "table").as_posix(): json.loads(p.read_text())
        for p in (files / "media" / "table").rglob("*.table.json")
    }
    cells = next(
        t for name, t in tables.items() if name.startswith("cells/breastmnist/test/linear/auroc")
    )
    assert cells["columns"] == CELL_COLUMNS
    simclr = next(row for row in cells["data"] if row[1] == "simclr" and row[3] == 0.1)
    assert simclr[4] == pytest.approx(_t_interval(AUROCS[("simclr", 0.1)])[0])
    assert any(name.startswith("paired/breastmnist/test/linear/auroc") for name in tables)
    figures = {p.name.split("_0_")[0] for p in (files / "media" / "images").rglob("*.png")}
    assert {f.filename.removesuffix(".png") for f in report.figures} <= figures

    blob = b"".join(p.read_bytes() for p in runs[0].glob("run-*.wandb"))
    for text in (
        "report",
        "smoke/breastmnist",
        artifact_name("smoke/breastmnist"),
        "sweep-report",
        "runs.csv",
        "summary.csv",
        "report.html",
    ):
        assert text.encode() in blob, text
    assert (sweep / "wandb_report.json").is_file()  # offline: the Report's specification
    leaked = [p for p in tmp_path.rglob("*") if p.is_file() and FAKE_KEY.encode() in p.read_bytes()]
    assert not leaked


def test_the_command_line_logs_the_report_with_wandb(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    sweep = smoke_sweep(tmp_path)
    assert main([str(sweep), "--wandb", "mode=offline", "project=medssl-test"]) == 0
    spec = json.loads((sweep / "wandb_report.json").read_text())
    assert spec["project"] == "medssl-test"
    assert len(list((sweep / "wandb_report" / "wandb").glob("offline-run-*"))) == 1
    assert main([str(sweep), "--wandb", "mode=sideways"]) == 1  # one sentence, no traceback
    assert "logger.mode must be online, offline or disabled" in capsys.readouterr().err


def test_artifact_names_are_what_wandb_accepts():
    assert artifact_name("label_efficiency/breastmnist") == "report-label_efficiency-breastmnist"
    assert artifact_name("2026-12-07/21:30:00") == "report-2026-12-07-21-30-00"
