"""The report's options: conf/report.yaml holds the intervals' level and the metrics, the command
line's --confidence and --metric override them, and both reach every interval and table."""

from __future__ import annotations

import json
import math

import pytest
from scipy import stats

from medssl import MedsslError
from medssl.cli.report import main
from medssl.study.report import ReportOptions, read_report_options, report_options_file
from medssl.study.report.metrics import report_metrics
from medssl.study.report.stats import level_text, quantile_text
from tests.study.report.conftest import (
    AUROCS,
    csv_rows,
    label_efficiency_sweep,
    row_of,
    table_under,
)

T_95_2 = 2.919986  # t_{0.95, 2}: the 90 % two-sided Student-t quantile for 3 seeds


def _half_width(values, t):
    n = len(values)
    mean = sum(values) / n
    return mean, t * math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) / math.sqrt(n)


def test_the_options_file_holds_a_level_and_metrics_the_report_names():
    options = read_report_options(report_options_file())
    assert report_options_file().name == "report.yaml" and report_options_file().is_file()
    assert 0 < options.confidence < 1 and options.metrics
    assert (
        level_text(0.95) == "95 %" and level_text(0.9) == "90 %" and level_text(0.995) == "99.5 %"
    )
    assert quantile_text(0.95) == "t_{0.975, n-1}" and quantile_text(0.9) == "t_{0.95, n-1}"
    assert stats.t.ppf(0.95, 2) == pytest.approx(T_95_2)


def test_the_confidence_flag_sets_every_interval_and_its_name(tmp_path, capsys):
    sweep, out = tmp_path / "sweep", tmp_path / "out"
    label_efficiency_sweep(sweep)
    assert main([str(sweep), "--confidence", "0.9", "--out", str(out)]) == 0
    markdown = (out / "report.md").read_text()
    assert capsys.readouterr().out.strip() == markdown.strip()
    table = table_under(markdown, "#### test/linear/auroc (AUROC)")
    mean, half = _half_width(AUROCS[("simclr", 0.1)], T_95_2)
    assert row_of(table, "simclr").startswith(f"| simclr | **{mean:.3f} ± {half:.3f} (n=3)** |")
    differences = [a - b for a, b in zip(AUROCS[("simclr", 0.1)], AUROCS[("supervised", 0.1)])]
    mean, half = _half_width(differences, T_95_2)
    paired = table_under(markdown, "#### test/linear/auroc: paired difference against supervised")
    assert row_of(paired, "simclr").startswith(f"| simclr | {mean:+.3f} ± {half:.3f} (won 3/3) |")
    assert "90 % Student-t interval (t_{0.95, n-1} · s / √n)" in markdown
    assert "± the 90 % t half-width" in markdown and "95 %" not in markdown
    summary = {(r["variant"], r["label_frac"]): r for r in csv_rows(out / "summary.csv")}
    _, half = _half_width(AUROCS[("simclr", 0.1)], T_95_2)
    assert float(summary[("simclr", "0.1")]["test/linear/auroc ci90"]) == pytest.approx(half)
    assert not any(column.endswith("ci95") for column in summary[("simclr", "0.1")])


def test_a_metric_name_stands_for_every_protocol_and_replaces_the_files_list(tmp_path):
    sweep, out = tmp_path / "sweep", tmp_path / "out"
    label_efficiency_sweep(sweep)
    for path in sweep.glob("*/results.json"):
        record = json.loads(path.read_text())
        path.write_text(json.dumps({**record, "test/knn/auroc": record["test/linear/auroc"]}))
    assert main([str(sweep), "--metric", "auroc", "--out", str(out)]) == 0
    markdown = (out / "report.md").read_text()
    assert "#### test/linear/auroc (AUROC)" in markdown
    assert "#### test/knn/auroc (AUROC)" in markdown
    assert "test/linear/acc" not in markdown and "test/linear/ece_ts" not in markdown


def test_chosen_keys_come_first_then_names_protocol_by_protocol():
    found = {"test/linear/auroc", "test/linear/acc", "test/knn/auroc", "val/linear/auroc"}
    assert report_metrics(found, ["auroc", "acc", "val/linear/auroc", "nll"]) == [
        "val/linear/auroc",
        "test/linear/auroc",
        "test/linear/acc",
        "test/knn/auroc",
    ]
    assert report_metrics(set(), ["auroc"]) == []  # no run finished: nothing to tabulate
    with pytest.raises(MedsslError, match="no results.json has 'nll'"):
        report_metrics(found, ["nll", "test/linear/nll"])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("confidence: 0.95\n", "holds the keys confidence, metrics; found"),
        ("confidence: 0.95\nmetrics: [auroc]\nlevel: 2\n", "found .*level"),
        ("confidence: 95\nmetrics: [auroc]\n", "strictly between 0 and 1.*not 95"),
        ("confidence: yes\nmetrics: [auroc]\n", "strictly between 0 and 1.*not True"),
        ("confidence: 0.9\nmetrics: []\n", "non-empty list"),
        ("confidence: 0.9\nmetrics: auroc\n", "metrics is a list"),
        ("confidence: [0.9\n", "report.yaml is not valid YAML \\(line 2\\)"),
    ],
)
def test_a_bad_options_file_is_one_sentence_naming_it(tmp_path, text, message):
    path = tmp_path / "report.yaml"
    path.write_text(text)
    with pytest.raises(MedsslError, match=message) as error:
        read_report_options(path)
    assert "\n" not in str(error.value)
    with pytest.raises(MedsslError, match="missing.yaml: No such file or directory"):
        read_report_options(tmp_path / "missing.yaml")


def test_a_bad_flag_is_refused_and_none_leaves_the_files_value(tmp_path, capsys):
    options = ReportOptions(confidence=0.8, metrics=("auroc",))
    assert options.overridden(confidence=None, metrics=None) == options
    assert options.overridden(confidence=0.5, metrics=["acc"]) == ReportOptions(0.5, ("acc",))
    label_efficiency_sweep(tmp_path)
    assert main([str(tmp_path), "--confidence", "1.5"]) == 1
    assert capsys.readouterr().err.startswith(
        "error: the report's confidence is a level strictly between 0 and 1"
    )
