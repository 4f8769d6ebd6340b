"""Class imbalance: `class_weight: balanced` for the probe, fine-tuning and the supervised method,
and per-class recall in the metrics. On overlapping, 9:1 imbalanced classes an unweighted
classifier trades the minority class for accuracy on the majority; balanced weighting must
raise balanced ACC."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import recall_score
from sklearn.utils.class_weight import compute_class_weight
from torch import nn

from medssl.evaluation.calibration import logits_to_probs
from medssl.evaluation.linear_probe import LinearProbe
from medssl.evaluation.metrics import classification_metrics
from medssl.evaluation.protocol import EvalInputs
from medssl.losses.class_weight import balanced_weights
from medssl.methods.base import task_arguments
from medssl.methods.supervised import Supervised
from medssl.models.small_cnn import SmallCNN
from tests.evaluation.finetune_settings import finetune


class PixelEncoder(nn.Module):
    """Features = the four pixels of a 2x2 image, through an identity-initialised linear layer."""

    num_features = 4

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 4)
        with torch.no_grad():
            self.linear.weight.copy_(torch.eye(4))
            self.linear.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))


def overlapping(rng, counts, shift=1.2):
    """2x2 images: class k's pixels ~ N(k * shift, 1) in units of 25 grey levels."""
    y = np.repeat(np.arange(len(counts)), counts)
    x = rng.normal(size=(len(y), 1, 2, 2)) + shift * y[:, None, None, None]
    images = np.clip(100 + 25 * x, 0, 255).astype(np.uint8)
    return torch.as_tensor(images), y


def imbalanced_inputs(seed=0, counts=(270, 30), balanced_eval=(100, 100)):
    rng = np.random.default_rng(seed)
    splits = {
        "train": overlapping(rng, counts),
        "val": overlapping(rng, balanced_eval),
        "test": overlapping(rng, balanced_eval),
    }
    torch.manual_seed(seed)
    return EvalInputs(
        task="binary" if len(counts) == 2 else "multiclass",
        num_classes=len(counts),
        encoder=PixelEncoder(),
        images={s: v[0] for s, v in splits.items()},
        labels={s: v[1] for s, v in splits.items()},
        device=torch.device("cpu"),
        batch_size=256,
    )


def balanced_acc(inputs, logits) -> float:
    probs = logits_to_probs(inputs.task, logits)
    return classification_metrics(inputs.task, inputs.labels["test"], probs)["balanced_acc"]


@pytest.mark.parametrize("counts", [(270, 30), (200, 60, 20)])
def test_balanced_weights_are_sklearns(counts):
    y = np.repeat(np.arange(len(counts)), counts)
    expected = compute_class_weight("balanced", classes=np.arange(len(counts)), y=y)
    np.testing.assert_allclose(balanced_weights("multiclass", y, len(counts)), expected)
    # A class absent from the labels weighs 1; the present ones as sklearn weighs them.
    weights = balanced_weights("multiclass", y, len(counts) + 1)
    np.testing.assert_allclose(weights, [*expected, 1.0])


def test_multilabel_weights_are_negatives_over_positives():
    y = np.array([[1, 0, 1], [0, 0, 1], [0, 0, 1], [0, 0, 1]])
    np.testing.assert_allclose(balanced_weights("multilabel", y, 3), [3.0, 1.0, 1.0])


@pytest.mark.parametrize("counts", [(270, 30), (260, 30, 10)])
def test_balanced_probe_raises_balanced_accuracy(counts):
    inputs = imbalanced_inputs(counts=counts, balanced_eval=(60,) * len(counts))
    scores = {
        weight: balanced_acc(
            inputs,
            LinearProbe(Cs=(1.0,), max_iter=1000, class_weight=weight, link="softmax")
            .evaluate(inputs)
            .test,
        )
        for weight in (None, "balanced")
    }
    assert scores["balanced"] > scores[None] + 0.03, scores


def test_balanced_finetuning_raises_balanced_accuracy():
    inputs = imbalanced_inputs()
    scores = {}
    for weight in (None, "balanced"):
        out = finetune(
            epochs=15,
            batch_size=64,
            lr=5e-2,
            warmup_epochs=0,
            head_only_epochs=15,  # the pixel encoder stays the identity: the loss alone differs
            patience=15,
            class_weight=weight,
            head="linear",
            probe=None,
        ).evaluate(inputs)
        scores[weight] = balanced_acc(inputs, out.test)
    assert scores["balanced"] > scores[None] + 0.03, scores


@pytest.mark.parametrize("task,k", [("multiclass", 4), ("binary", 2), ("multilabel", 3)])
def test_per_class_recall_is_sklearns(task, k):
    rng = np.random.default_rng(3)
    if task == "multilabel":
        y = rng.integers(0, 2, (80, k))
        probs = rng.uniform(size=(80, k))
        y_pred = (probs >= 0.5).astype(int)
        expected = [recall_score(y[:, j], y_pred[:, j]) for j in range(k)]
    else:
        y = rng.integers(0, k, 80)
        probs = rng.dirichlet(np.ones(k), 80)
        expected = recall_score(y, probs.argmax(1), average=None, labels=np.arange(k))
    metrics = classification_metrics(task, y, probs)
    assert [metrics[f"recall/{j}"] for j in range(k)] == pytest.approx(list(expected))
    if task != "multilabel":  # balanced ACC is their mean
        assert metrics["balanced_acc"] == pytest.approx(np.mean(expected))


def test_per_class_recall_of_an_absent_class_is_nan():
    y = np.array([0, 0, 2, 2])
    probs = np.eye(3)[[0, 1, 2, 2]]
    metrics = classification_metrics("multiclass", y, probs)
    assert metrics["recall/0"] == 0.5 and metrics["recall/2"] == 1.0
    assert np.isnan(metrics["recall/1"])


@pytest.mark.parametrize("task", ["multiclass", "multilabel"])
def test_supervised_balanced_loss_is_the_weighted_cross_entropy(task):
    torch.manual_seed(0)
    if task == "multilabel":
        labels = torch.tensor([[1, 0], [0, 0], [0, 1], [0, 1]])
    else:
        labels = torch.tensor([0, 0, 0, 1, 2, 2])
    k = labels.shape[1] if task == "multilabel" else 3
    kwargs = task_arguments(Supervised, task, k, labels)
    assert kwargs["train_labels"] is labels  # the runner's labelled subset reaches the method
    method = Supervised(
        SmallCNN(in_chans=1, width=4, name="smallcnn", input_size=12),
        **kwargs,
        label_smoothing=0.0,
        select_on_val=False,
        class_weight="balanced",
    ).eval()
    views = [torch.randn(len(labels), 1, 12, 12)]
    loss = method(views, labels)["loss"]
    with torch.no_grad():
        logits = method.head(method.backbone(views[0]))
    weight = torch.as_tensor(balanced_weights(task, labels.numpy(), k), dtype=torch.float32)
    if task == "multilabel":
        expected = F.binary_cross_entropy_with_logits(logits, labels.float(), pos_weight=weight)
    else:
        # sum_i w_{y_i} CE_i / sum_i w_{y_i}: every class carries the same total weight.
        ce = F.cross_entropy(logits, labels, reduction="none")
        expected = (weight[labels] * ce).sum() / weight[labels].sum()
    torch.testing.assert_close(loss.detach(), expected)
    plain = Supervised(
        SmallCNN(in_chans=1, width=4, name="smallcnn", input_size=12),
        task,
        k,
        label_smoothing=0.0,
        select_on_val=False,
        class_weight=None,
        train_labels=labels,
    )
    assert plain.class_weight is None
    assert "class_weight" not in method.state_dict()  # checkpoints and encoder.pt unchanged
