"""Fine-tuning's defaults: the warm-up + cosine schedule, the head started from the linear probe
(which keeps an aggressive fine-tuning from collapsing onto the majority class), the MLP head,
label smoothing, and the head sized by `feature_dim`."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from medssl.evaluation.calibration import logits_to_probs
from medssl.evaluation.finetune import FineTune, warmup_cosine
from medssl.evaluation.finetune_heads import TaskLoss
from medssl.evaluation.linear_probe import LinearProbe
from medssl.evaluation.metrics import auroc, classification_metrics
from medssl.evaluation.protocol import EvalInputs
from medssl.models.backbone import create_backbone
from medssl.models.small_cnn import SmallCNN

COUNTS = (50, 25, 12, 8, 5)  # about 100 labels, five classes, 10:1 imbalance
SPOTS = [(1, 1), (1, 7), (7, 1), (7, 7), (4, 4)]


def spot_images(rng, counts, size=12, contrast=50):
    """Class k: a faint 4x4 square at SPOTS[k] on noise."""
    y = np.repeat(np.arange(len(counts)), counts)
    x = rng.integers(0, 90, (len(y), 1, size, size))
    for i, k in enumerate(y):
        r, c = SPOTS[k]
        x[i, :, r : r + 4, c : c + 4] += contrast
    return torch.as_tensor(x, dtype=torch.uint8), y


def imbalanced_five_class(seed: int) -> EvalInputs:
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    splits = {
        "train": spot_images(rng, COUNTS),
        "val": spot_images(rng, (20,) * 5),
        "test": spot_images(rng, (20,) * 5),
    }
    return EvalInputs(
        task="multiclass",
        num_classes=5,
        encoder=SmallCNN(in_chans=1, width=4),
        images={s: v[0] for s, v in splits.items()},
        labels={s: v[1] for s, v in splits.items()},
        device=torch.device("cpu"),
        batch_size=128,
    )


def aggressive(probe, **changes) -> FineTune:
    """A learning rate high enough to wreck a randomly started head on these 100 labels."""
    settings = dict(
        epochs=6,
        batch_size=32,
        lr=1e-1,
        warmup_epochs=0,
        head_only_epochs=0,
        patience=6,
        class_weight="balanced",
        head="linear",
        probe=probe,
    )
    return FineTune(**{**settings, **changes})


def test_warmup_then_cosine_factors():
    # 4 warm-up updates of 20: 1/4, 2/4, 3/4, 1, then a cosine from 1 down towards 0.
    factors = [warmup_cosine(s, 4, 20) for s in range(20)]
    assert factors[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert factors[4:] == pytest.approx(
        [0.5 * (1 + math.cos(math.pi * (s - 4) / 16)) for s in range(4, 20)]
    )
    assert all(a >= b for a, b in zip(factors[3:], factors[4:], strict=False))
    assert factors[-1] < 0.01 and factors[-1] > 0
    assert warmup_cosine(0, 0, 10) == 1.0  # no warm-up: the cosine from the first update


def test_finetune_learning_rates_follow_the_schedule(monkeypatch):
    """Head-only epochs at lr; then both groups at lr (and lr * encoder_lr_scale) times the
    warm-up + cosine factor of each update."""
    seen = []
    step = torch.optim.AdamW.step

    def recording_step(self, *args, **kwargs):
        seen.append([group["lr"] for group in self.param_groups])
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", recording_step)
    inputs = imbalanced_five_class(0)  # 100 images, batch 50: 2 updates per epoch
    FineTune(
        epochs=5,
        batch_size=50,
        lr=1e-2,
        encoder_lr_scale=0.1,
        warmup_epochs=1.0,
        head_only_epochs=1,
        patience=5,
        head="linear",
        probe=None,
    ).evaluate(inputs)
    factors = [1.0, 1.0] + [warmup_cosine(s, 2, 8) for s in range(8)]
    assert len(seen) == 10
    np.testing.assert_allclose([lrs[0] for lrs in seen], [1e-2 * f for f in factors])
    np.testing.assert_allclose([lrs[1] for lrs in seen][2:], [1e-3 * f for f in factors[2:]])


def test_finetuning_from_the_probe_does_not_collapse_to_the_majority_class():
    """~100 labels, 50/25/12/8/5: a random head at this learning rate ends predicting (almost)
    only the majority class (balanced ACC near 1/5); started from the probe, and with that start
    kept as epoch 0 unless val improves on it, fine-tuning cannot fall below the probe on val."""
    inputs = imbalanced_five_class(1)
    probe = LinearProbe(Cs=(0.1, 1.0), class_weight="balanced")
    out = aggressive(probe).evaluate(inputs)
    metrics = classification_metrics(
        "multiclass", inputs.labels["test"], logits_to_probs("multiclass", out.test)
    )
    assert metrics["balanced_acc"] > 0.35, metrics["balanced_acc"]  # 1/K = 0.2 is collapse
    # The start is the probe itself: its val AUROC, and the kept checkpoint is no worse.
    _, probe_val_auroc, _ = probe.select(inputs)
    assert out.params["start_val_auroc"] == pytest.approx(probe_val_auroc)
    assert out.params["best_val_auroc"] >= probe_val_auroc


def test_mlp_head_starts_as_the_probe():
    inputs = imbalanced_five_class(0)
    probe = LinearProbe(Cs=(1.0,), class_weight="balanced")
    _, _, linear = probe.select(inputs)
    tune = aggressive(probe, head="mlp", mlp_hidden=16, epochs=1)
    model = tune.build_model(inputs)
    tune.start_from_probe(model.head, inputs)
    expected = linear(torch.as_tensor(inputs.features("val"), dtype=torch.float32))
    torch.testing.assert_close(
        torch.as_tensor(tune.logits(model, inputs.images["val"], inputs)).float(),
        expected.detach(),
        atol=1e-4,
        rtol=1e-4,
    )


def test_label_smoothing_is_torchs_and_smooths_multilabel_targets():
    torch.manual_seed(0)
    logits, y = torch.randn(6, 3), torch.tensor([0, 1, 2, 0, 1, 2])
    torch.testing.assert_close(
        TaskLoss("multiclass", None, 0.1)(logits, y),
        F.cross_entropy(logits, y, label_smoothing=0.1),
    )
    y_multi = torch.tensor([[1, 0, 1]] * 6)
    torch.testing.assert_close(
        TaskLoss("multilabel", None, 0.2)(logits, y_multi),
        F.binary_cross_entropy_with_logits(logits, torch.tensor([[0.9, 0.1, 0.9]] * 6)),
    )


def test_finetune_head_is_sized_by_feature_dim_not_num_features():
    """MobileNetV3 pools 288 channels into a 1024-wide pre-logits layer: the head reads 1024."""
    encoder = create_backbone("mobilenetv3_small_050", 1, 12, small_input=True)
    assert (encoder.num_features, encoder.head_hidden_size) == (288, 1024)
    inputs = imbalanced_five_class(0)
    inputs.encoder = encoder
    model = aggressive(None).build_model(inputs)
    assert model.head.linear.in_features == 1024
    assert model(torch.zeros(2, 1, 12, 12)).shape == (2, 5)


def test_finetune_returns_the_probe_when_no_epoch_improves_on_it():
    """Epoch 0 competes: with no epochs that improve (lr 0), the probe itself is returned."""
    inputs = imbalanced_five_class(0)
    probe = LinearProbe(Cs=(1.0,), class_weight="balanced")
    out = aggressive(probe, lr=0.0, epochs=2, patience=1).evaluate(inputs)
    assert out.params["best_epoch"] == 0
    _, probe_val, head = probe.select(inputs)
    probe_test = head(torch.as_tensor(inputs.features("test"), dtype=torch.float32)).detach()
    np.testing.assert_allclose(out.test, probe_test.double().numpy(), atol=1e-4)
    assert auroc(
        "multiclass", inputs.labels["val"], logits_to_probs("multiclass", out.val)
    ) == pytest.approx(probe_val)
