"""The report of a reproduction: full-label runs against every published reference."""

from __future__ import annotations

import json

from medssl.study.report import write_report
from tests.study.report.conftest import table_under

V2 = "MedMNIST v2 (Yang et al., Scientific Data 10, 41, 2023), Table 3"
PLUS = "MedMNIST+ (Doerrich et al., Scientific Reports 2025)"
CLASSIFIER = [0.88, 0.90, 0.92]
LINEAR = [0.85, 0.86, 0.87]


def _reproduction(sweep):
    for seed, (classifier, linear) in enumerate(zip(CLASSIFIER, LINEAR)):
        path = sweep / f"seed={seed}"
        path.mkdir(parents=True)
        record = {
            "config/method": "supervised",
            "config/dataset": "breastmnist",
            "label_frac": 1.0,
            "seed": seed,
            "label_seed": seed,
            "test/classifier/auroc": classifier,
            "test/classifier/acc": classifier - 0.05,
            "test/linear/auroc": linear,
            "test/linear/acc": linear - 0.05,
            "reference/MedMNIST v2/auroc": 0.901,
            "reference/MedMNIST v2/acc": 0.863,
            "reference/MedMNIST v2/source": V2,
            "reference/MedMNIST+/auroc": 0.876,
            "reference/MedMNIST+/acc": 0.840,
            "reference/MedMNIST+/source": PLUS,
        }
        (path / "results.json").write_text(json.dumps(record))


def test_both_references_are_tabulated_and_drawn_for_the_classifier(tmp_path):
    _reproduction(tmp_path)
    markdown = write_report(tmp_path).read_text()
    section = markdown.split("### Against the published references (all labels)", 1)[1]
    table = table_under(section, "#### test AUROC")
    assert table[0] == (
        "| variant, protocol | mean ± 95 % CI (n) | per seed | − MedMNIST v2 (0.901) "
        "| − MedMNIST+ (0.876) |"
    )
    row = next(line for line in table if line.startswith("| supervised, classifier |"))
    assert "0.880, 0.900, 0.920" in row and row.endswith("| -0.001 | +0.024 |")
    assert any(line.startswith("| supervised, linear |") for line in table)
    assert table[2].startswith("| supervised, classifier |")  # the trained network first
    assert f"Published reference: {PLUS}." in section and f"Published reference: {V2}." in section
    assert "#### test accuracy" in section
    assert (tmp_path / "references.png").stat().st_size > 10_000
    # The per-protocol tables carry one row per reference.
    classifier = table_under(markdown, "#### test/classifier/auroc (AUROC)")
    assert any(
        line.startswith("| published: MedMNIST+ (all labels) | 0.876 |") for line in classifier
    )
    assert any(
        line.startswith("| published: MedMNIST v2 (all labels) | 0.901 |") for line in classifier
    )


def test_no_reference_section_without_full_label_runs(tmp_path):
    _reproduction(tmp_path)
    for path in tmp_path.glob("*/results.json"):
        record = json.loads(path.read_text()) | {"label_frac": 0.1}
        path.write_text(json.dumps(record))
    markdown = write_report(tmp_path).read_text()
    assert "Against the published references" not in markdown
    assert not (tmp_path / "references.png").exists()


def test_a_method_without_the_protocol_has_no_row_against_the_references(tmp_path):
    # An SSL encoder is scored by probes only: it has no `classifier` row, but a `linear` one.
    _reproduction(tmp_path / "supervised")
    for path in (tmp_path / "supervised").glob("*/results.json"):
        record = json.loads(path.read_text())
        record = {k: v for k, v in record.items() if not k.startswith("test/classifier/")}
        target = tmp_path / "simclr" / path.parent.name / "results.json"
        target.parent.mkdir(parents=True)
        target.write_text(json.dumps(record | {"config/method": "simclr"}))
    markdown = write_report(tmp_path).read_text()
    section = markdown.split("### Against the published references (all labels)", 1)[1]
    labels = [line.split(" | ")[0] for line in table_under(section, "#### test AUROC")[2:]]
    assert labels == [
        "| supervised, classifier",
        "| simclr, linear",
        "| supervised, linear",
    ]
    # Nor a row of n/a in the per-protocol table of a protocol it does not have.
    classifier = table_under(markdown, "#### test/classifier/auroc (AUROC)")
    assert not any(line.startswith("| simclr |") for line in classifier)
    assert any(line.startswith("| supervised |") for line in classifier)
    linear = table_under(markdown, "#### test/linear/auroc (AUROC)")
    assert any(line.startswith("| simclr |") for line in linear)
    # And no paired difference to draw from runs that never had the protocol.
    assert "#### test/classifier/auroc: paired difference" not in markdown
    assert "#### test/linear/auroc: paired difference" in markdown
