"""How the report files, names and orders a result key, including keys below the protocol."""

from __future__ import annotations

import pytest

from medssl.study.report.metrics import (
    by_protocol,
    display_name,
    file_stem,
    lower_is_better,
    protocol_of,
)


@pytest.mark.parametrize(
    ("key", "protocol", "shown", "lower"),
    [
        ("test/linear/auroc", "linear", "AUROC", False),
        ("val/classifier/recall/1", "classifier", "recall of class 1", False),
        ("test/knn/corrupt/noise/3/ece", "knn", "ECE (corrupt/noise/3)", True),
        ("test/finetune/abstain/0.50/coverage", "finetune", "coverage (abstain/0.50)", False),
        ("time/total_s", "other", "total_s", False),
    ],
)
def test_keys_below_the_protocol_keep_their_protocol_and_a_readable_name(
    key, protocol, shown, lower
):
    assert protocol_of(key) == protocol
    assert display_name(key) == shown
    assert lower_is_better(key) is lower


def test_a_per_class_metric_has_a_file_name_without_a_slash():
    assert file_stem("test/classifier/recall/1") == "recall_1"
    assert file_stem("val/classifier/recall/1") == "val_classifier_recall_1"
    assert by_protocol(["val/classifier/recall/0", "val/classifier/auroc"]) == {
        "classifier": ["val/classifier/recall/0", "val/classifier/auroc"]
    }
