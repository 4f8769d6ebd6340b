"""The metrics each task is judged by: quadratic-weighted kappa and the mean absolute grade error
for graded (ordinal) tasks, macro average precision for multi-label ones; against a hand
computation and scikit-learn, and written by every protocol of an evaluation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, cohen_kappa_score, mean_absolute_error

from medssl.evaluation.knn import KNNClassifier
from medssl.evaluation.linear_probe import LinearProbe
from medssl.evaluation.metrics import classification_metrics, label_metrics
from medssl.evaluation.output_options import EvalOutputOptions
from medssl.evaluation.runner import evaluate_encoder
from medssl.models.small_cnn import SmallCNN
from tests.evaluation.test_eval_runner import OPTIONS, synthetic

# Five grades, one image each; the classifier says 0, 2, 2, 1, 4.
TRUE = np.array([0, 1, 2, 3, 4])
PREDICTED = np.array([0, 2, 2, 1, 4])


def one_hot_probs(predicted: np.ndarray, k: int) -> np.ndarray:
    probs = np.full((len(predicted), k), 0.1 / (k - 1))
    probs[np.arange(len(predicted)), predicted] = 0.9
    return probs


def test_ordinal_kappa_and_grade_error_by_hand():
    metrics = classification_metrics("ordinal", TRUE, one_hot_probs(PREDICTED, 5))
    # |error| per image: 0, 1, 0, 2, 0.
    assert metrics["grade_mae"] == pytest.approx(3 / 5)
    # Quadratic kappa = 1 - sum(w * O) / sum(w * E), w_ij = (i - j)^2 / 16, O the counts of
    # (true, predicted) pairs and E their chance counts (outer product of the marginals / N).
    # Observed: (1^2 + 2^2) / 16. Chance: one image per true grade, predicted counts 1, 1, 2,
    # 0, 1; sum_i (i - j)^2 over the five true grades is 30, 15, 10, 15, 30 for j = 0..4, so
    # sum(w * E) = (30 + 15 + 2 * 10 + 30) / 16 / 5 = 19 / 16.
    assert metrics["kappa"] == pytest.approx(1 - 5 / 19)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ordinal_headline_metrics_agree_with_sklearn(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 5, 200)
    logits = rng.normal(size=(200, 5))
    logits[np.arange(200), np.clip(y + rng.integers(-1, 2, 200), 0, 4)] += 2.0
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    metrics = classification_metrics("ordinal", y, probs)
    predicted = probs.argmax(axis=1)
    assert metrics["kappa"] == pytest.approx(cohen_kappa_score(y, predicted, weights="quadratic"))
    assert metrics["grade_mae"] == pytest.approx(mean_absolute_error(y, predicted))


def test_the_grade_error_is_for_graded_tasks_only():
    assert "grade_mae" not in classification_metrics(
        "multiclass", TRUE, one_hot_probs(PREDICTED, 5)
    )
    assert label_metrics("ordinal", TRUE, PREDICTED, 5)["grade_mae"] == pytest.approx(0.6)


def test_macro_average_precision_by_hand_and_against_sklearn():
    # One label, positives ranked 1st and 3rd of 4: AP = (1/1 + 2/3) / 2.
    y = np.array([[1], [0], [1], [0]])
    scores = np.array([[0.9], [0.8], [0.7], [0.1]])
    assert classification_metrics("multilabel", y, scores)["average_precision"] == pytest.approx(
        5 / 6
    )
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, (300, 6))
    probs = np.clip(0.5 * y + rng.uniform(0, 0.6, (300, 6)), 0, 1)  # per label: need not sum to 1
    expected = average_precision_score(y, probs, average="macro")
    assert classification_metrics("multilabel", y, probs)["average_precision"] == pytest.approx(
        expected
    )
    assert "average_precision" not in classification_metrics(
        "binary", TRUE % 2, one_hot_probs(PREDICTED % 2, 2)
    )


def test_a_label_without_a_positive_is_left_out_of_the_macro_average():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, (100, 4))
    y[:, 2] = 0  # no positive: its AP is undefined
    probs = rng.uniform(size=(100, 4))
    kept = [0, 1, 3]
    expected = average_precision_score(y[:, kept], probs[:, kept], average="macro")
    assert classification_metrics("multilabel", y, probs)["average_precision"] == pytest.approx(
        expected
    )


def test_average_precision_ranks_by_the_logits_where_probabilities_tie_at_one():
    y = np.array([[0], [1]])
    logits = np.array([[40.0], [50.0]])  # both sigmoids round to exactly 1.0 in float64
    probs = 1 / (1 + np.exp(-logits))
    assert probs[0, 0] == probs[1, 0] == 1.0
    assert classification_metrics("multilabel", y, probs)["average_precision"] == 0.5
    ranked = classification_metrics("multilabel", y, probs, logits=logits)
    assert ranked["average_precision"] == 1.0


@pytest.mark.parametrize(("task", "names"), [("ordinal", ("kappa", "grade_mae")),
                                             ("multilabel", ("average_precision",))])  # fmt: skip
def test_every_protocol_writes_the_task_s_headline_metrics(task, names, tmp_path):
    torch.manual_seed(0)
    protocols = {
        "linear": LinearProbe(Cs=(1.0,), max_iter=200, class_weight="balanced", link="softmax"),
        "knn": KNNClassifier(k=5, temperature=0.07),
    }
    results = evaluate_encoder(
        SmallCNN(in_chans=3, width=4, name="smallcnn", input_size=16),
        synthetic(task),
        torch.arange(40),
        protocols,
        options=EvalOutputOptions(**{**OPTIONS, "figures": False, "cam": False}),
        run_dir=tmp_path,
        device=torch.device("cpu"),
        precision="fp32",
    )
    for protocol in protocols:
        for split in ("val", "test"):
            for name in names:
                assert np.isfinite(results[f"{split}/{protocol}/{name}"]), (protocol, name)
