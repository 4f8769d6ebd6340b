"""CORAL's cumulative-link head against a hand computation from the paper's equations, the
ordinal probe, and the `link` choice on val quadratic kappa."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import cohen_kappa_score

from medssl.errors import MedsslError
from medssl.evaluation.linear_probe import LinearProbe
from medssl.evaluation.ordinal import (
    OrdinalHead,
    candidate_links,
    class_probs,
    coral_loss,
    coral_rank,
    cumulative_targets,
    fit_ordinal_probe,
    pick_link,
)
from medssl.evaluation.protocol import EvalInputs
from medssl.models.small_cnn import SmallCNN
from tests.evaluation.finetune_settings import finetune


def sigmoid(z: float) -> float:
    return 1 / (1 + math.exp(-z))


def test_loss_rank_and_probabilities_match_a_hand_computation():
    # One image, K = 4 grades, w . x = 0.5, biases (1.0, 0.0, -2.0): z = (1.5, 0.5, -1.5).
    z = torch.tensor([[1.5, 0.5, -1.5]])
    p = [sigmoid(1.5), sigmoid(0.5), sigmoid(-1.5)]  # P(y > 0), P(y > 1), P(y > 2)
    # Grade 2: tasks 0 and 1 are "above", task 2 is not (the paper's extended binary labels).
    assert cumulative_targets(torch.tensor([2]), 4).tolist() == [[1.0, 1.0, 0.0]]
    expected = -(math.log(p[0]) + math.log(p[1]) + math.log(1 - p[2]))
    assert coral_loss(z, torch.tensor([2])).item() == pytest.approx(expected, rel=1e-6)
    weighted = coral_loss(z, torch.tensor([2]), torch.tensor([1.0, 1.0, 3.0, 1.0]))
    assert weighted.item() == pytest.approx(3 * expected, rel=1e-6)
    assert coral_rank(z).tolist() == [2]  # sigmoid > 0.5 for 1.5 and 0.5, not for -1.5
    hand = [1 - p[0], p[0] - p[1], p[1] - p[2], p[2]]
    np.testing.assert_allclose(class_probs(z)[0].numpy(), hand, rtol=1e-6)


def test_unordered_thresholds_give_clipped_renormalised_probabilities():
    probs = class_probs(torch.tensor([[-1.0, 2.0]]))  # P(y > 1) > P(y > 0): p_1 would be < 0
    assert (probs > 0).all() and probs.sum().item() == pytest.approx(1.0)
    assert probs[0, 1].item() < 1e-5


def test_the_head_returns_log_probabilities_and_starts_ordered():
    head = OrdinalHead(3, 5, None)
    assert (head.biases[1:] < head.biases[:-1]).all()
    out = head(torch.randn(7, 3))
    assert out.shape == (7, 5)
    np.testing.assert_allclose(out.exp().sum(1).detach().numpy(), 1.0, rtol=1e-5)


def graded(n: int, seed: int, k: int = 5):
    """Grades that are a noisy monotone function of one feature, among noise features."""
    rng = np.random.default_rng(seed)
    severity = rng.uniform(0, k, n)
    y = np.clip(np.floor(severity + rng.normal(0, 0.4, n)), 0, k - 1).astype(int)
    x = np.column_stack([severity * 3 + 10, rng.normal(size=(n, 4))])
    return x, y


def test_the_ordinal_probe_learns_monotone_grades_and_folds_its_scaler():
    x, y = graded(300, 0)
    head = fit_ordinal_probe(x, y, 5, C=1.0, class_weight=None, max_iter=200)
    with torch.no_grad():
        z = head.cumulative_logits(torch.as_tensor(x, dtype=torch.float32))
    assert (head.biases[1:] <= head.biases[:-1]).all()  # rank consistent (the paper's Thm 1)
    assert cohen_kappa_score(y, coral_rank(z).numpy(), weights="quadratic") > 0.9
    assert head.linear.weight[0, 0] > 0 and head.linear.weight[0, 1:].abs().max() < 0.3


def test_pick_link_keeps_the_better_val_kappa_and_softmax_on_a_tie():
    y = np.array([0, 1, 2, 3, 4, 4])
    right = np.eye(5)[y]
    off = np.eye(5)[[0, 1, 2, 3, 4, 0]]
    assert pick_link(y, {"softmax": off, "ordinal": right})[0] == "ordinal"
    link, record = pick_link(y, {"softmax": right, "ordinal": right})
    assert link == "softmax" and record["val_kappa_ordinal"] == pytest.approx(1.0)


def test_auto_fits_both_only_on_graded_tasks_and_bad_links_are_refused():
    assert candidate_links("auto", "ordinal", "k") == ("softmax", "ordinal")
    assert candidate_links("auto", "multiclass", "k") == ("softmax",)
    with pytest.raises(MedsslError, match="eval.linear.link"):
        candidate_links("coral", "ordinal", "eval.linear.link")
    with pytest.raises(MedsslError, match="multi-label"):
        candidate_links("ordinal", "multilabel", "k")
    with pytest.raises(MedsslError, match="head=linear"):
        finetune(link="ordinal", head="mlp")


def graded_inputs(seed: int = 0) -> EvalInputs:
    """A five-grade task on 12 px images: the grade sets a bright square's side (genuinely
    visible), with label noise."""
    rng = np.random.default_rng(seed)

    def split(n):
        side = rng.uniform(2, 10, n)
        y = np.clip(np.floor((side - 2) / 1.6 + rng.normal(0, 0.3, n)), 0, 4).astype(int)
        x = rng.integers(0, 60, (n, 1, 12, 12))
        for i, s in enumerate(side.astype(int)):
            x[i, :, 1 : 1 + s, 1 : 1 + s] += 150
        return torch.as_tensor(x, dtype=torch.uint8), y

    splits = {"train": split(120), "val": split(60), "test": split(60)}
    torch.manual_seed(seed)
    return EvalInputs(
        task="ordinal",
        num_classes=5,
        encoder=SmallCNN(in_chans=1, width=4, name="smallcnn", input_size=12),
        images={s: v[0] for s, v in splits.items()},
        labels={s: v[1] for s, v in splits.items()},
        device=torch.device("cpu"),
        batch_size=64,
    )


def test_the_probe_and_finetuning_record_the_link_they_chose_on_val():
    inputs = graded_inputs()
    probe = LinearProbe(Cs=(0.1, 1.0), max_iter=300, class_weight="balanced", link="auto")
    out = probe.evaluate(inputs)
    assert out.params["link"] in ("softmax", "ordinal")
    kappas = {k: out.params[f"val_kappa_{k}"] for k in ("softmax", "ordinal")}
    assert out.params["link"] == max(kappas, key=lambda k: (kappas[k], k == "softmax"))
    assert np.allclose(np.exp(out.test).sum(1), 1.0, atol=1e-4)  # log-probs either way
    tune = finetune(epochs=2, batch_size=32, head_only_epochs=1, patience=2, probe=probe)
    tuned = tune.evaluate(inputs)
    assert {"link", "val_kappa_softmax", "val_kappa_ordinal"} <= set(tuned.params)
    assert np.isfinite(tuned.test).all()


def test_with_two_grades_the_ordinal_probe_is_sklearns_logistic_regression_at_the_same_C():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = graded(200, 1, k=2)
    reference = make_pipeline(StandardScaler(), LogisticRegression(C=0.3, tol=1e-10)).fit(x, y)
    head = fit_ordinal_probe(x, y, 2, C=0.3, class_weight=None, max_iter=500)
    with torch.no_grad():
        z = head.cumulative_logits(torch.as_tensor(x, dtype=torch.float32))[:, 0].numpy()
    np.testing.assert_allclose(z, reference.decision_function(x), atol=2e-3)
