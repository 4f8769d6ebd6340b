"""MC dropout: entropy, mutual information and AURC against hand-worked examples; fine-tuning
with dropout before the head gives samples that differ, reproducibly."""

from __future__ import annotations

import math

import numpy as np
import pytest

from medssl import MedsslError
from medssl.evaluation.mc_dropout import MCDropout, mc_metrics, mc_statistics
from tests.evaluation.conftest import blob_inputs
from tests.evaluation.finetune_settings import finetune


def as_logits(probs) -> np.ndarray:
    """Logits whose softmax gives back `probs` `(T, N, K)`."""
    return np.log(np.asarray(probs, dtype=np.float64))


def test_entropy_and_mutual_information_by_hand():
    # One image whose two samples are sure of opposite classes, one whose samples agree.
    stats = mc_statistics(
        "multiclass", as_logits([[[0.999999, 1e-6], [0.3, 0.7]], [[1e-6, 0.999999], [0.3, 0.7]]])
    )
    np.testing.assert_allclose(stats["mean_probs"], [[0.5, 0.5], [0.3, 0.7]], atol=1e-9)
    h = -(0.3 * math.log(0.3) + 0.7 * math.log(0.7))
    np.testing.assert_allclose(stats["entropy"], [math.log(2), h], atol=1e-5)
    np.testing.assert_allclose(stats["mutual_info"], [math.log(2), 0.0], atol=1e-4)
    assert stats["mutual_info"][1] == 0.0  # agreeing samples: no model uncertainty at all
    # Multi-label: one binary decision per (image, label).
    multi = mc_statistics("multilabel", np.zeros((3, 4, 5)))
    assert multi["entropy"].shape == (20,)
    np.testing.assert_allclose(multi["entropy"], math.log(2))


def test_mc_aurc_ranks_by_entropy_and_by_mutual_information_as_worked_by_hand():
    # Two samples per image; labels 0, 1, 1, 0.
    samples = as_logits(
        [
            [[0.9, 0.1], [0.99, 0.01], [0.2, 0.8], [0.6, 0.4]],
            [[0.9, 0.1], [0.41, 0.59], [0.2, 0.8], [0.6, 0.4]],
        ]
    )
    metrics = mc_metrics("multiclass", np.array([0, 1, 1, 0]), samples)
    # MC means: 0.9, 0.7, 0.8 (class 1), 0.6 -> image 1 is wrong, the others right.
    assert metrics["acc"] == pytest.approx(0.75)
    # Entropy ranks H(0.9) < H(0.8) < H(0.7) < H(0.6): right, right, wrong, right.
    assert metrics["aurc"] == pytest.approx((0 + 0 + 1 / 3 + 1 / 4) / 4)
    # Mutual information is 0 for the three agreeing images, so the wrong one comes last.
    assert metrics["aurc_mi"] == pytest.approx((0 + 0 + 0 + 1 / 4) / 4)


def test_finetune_with_mc_dropout_gives_differing_reproducible_samples():
    inputs = blob_inputs()
    mc = MCDropout(samples=6, rate=0.3, seed=0)
    out = finetune(
        epochs=1,
        batch_size=32,
        head_only_epochs=1,
        patience=5,
        head="linear",
        probe=None,
        mc_dropout=mc,
    ).evaluate(inputs)
    assert out.model.dropout.p == 0.3
    test = inputs.images["test"]
    samples = out.sample_predict(test, 6, 0)
    assert samples.shape == (6, 64, 2)
    assert samples.std(axis=0).mean() > 1e-3  # the masks differ between passes
    np.testing.assert_array_equal(samples, out.sample_predict(test, 6, 0))  # and repeat by seed
    assert not np.array_equal(samples, out.sample_predict(test, 6, 1))
    # Deterministic predictions keep dropout off: the same logits as the protocol's test ones.
    np.testing.assert_allclose(out.predict(test), out.test)
    off = finetune(mc_dropout=MCDropout(samples=0, rate=0.3, seed=0))
    assert off.build_model(inputs).dropout.p == 0.0  # fine-tuning without MC is unchanged


def test_mc_dropout_settings_are_checked():
    with pytest.raises(MedsslError, match="at least 2"):
        MCDropout(samples=1, rate=0.2, seed=0)
    with pytest.raises(MedsslError, match="rate must lie in"):
        MCDropout(samples=5, rate=0.0, seed=0)
