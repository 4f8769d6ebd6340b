"""The sweep report: grouping, mean and std over seeds, table, CSV and plot."""

from __future__ import annotations

import csv
import json

import pytest

from medssl import MedsslError
from medssl.sweep_report import main, write_report


def _result(folder, method, frac, seed, auroc):
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(
        json.dumps(
            {
                "dataset": "breastmnist",
                "method": method,
                "backbone": "resnet18",
                "label_frac": frac,
                "seed": seed,
                "test/linear/auroc": auroc,
                "test/linear/acc": 0.5,
                "test/linear/ece": 0.1,
            }
        )
    )


def test_report_averages_seeds_per_method_and_fraction(tmp_path):
    for seed, auroc in enumerate([0.70, 0.80]):
        _result(tmp_path / f"simclr_0.1_{seed}", "SimCLR", 0.1, seed, auroc)
    _result(tmp_path / "simclr_1.0", "SimCLR", 1.0, 0, 0.9)
    _result(tmp_path / "sup_0.1", "Supervised", 0.1, 0, 0.6)
    report = write_report(tmp_path)
    with open(tmp_path / "report.csv") as handle:
        rows = {(r["method"], r["label_frac"]): r for r in csv.DictReader(handle)}
    row = rows[("SimCLR", "0.1")]
    assert row["runs"] == "2"
    assert float(row["test/linear/auroc"]) == pytest.approx(0.75)
    assert float(row["test/linear/auroc std"]) == pytest.approx(0.0707107, rel=1e-5)  # sample std
    assert rows[("Supervised", "0.1")]["test/linear/auroc std"] == ""
    assert "| breastmnist | SimCLR | resnet18 | 0.1 | 2 | 0.750 ± 0.071 |" in report.read_text()
    png = (tmp_path / "label_efficiency.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_empty_folder_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(MedsslError, match="no results.json"):
        write_report(tmp_path)
    assert main([str(tmp_path)]) == 1
    assert "no results.json" in capsys.readouterr().err
