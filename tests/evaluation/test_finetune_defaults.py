"""Fine-tuning's defaults: the warm-up + cosine schedule, the head started from the linear probe
(which keeps an aggressive fine-tuning from collapsing onto the majority class), the MLP head,
label smoothing, and the head sized by `feature_dim`."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from medssl.evaluation import finetune_predict
from medssl.evaluation.calibration import logits_to_probs
from medssl.evaluation.finetune_heads import TaskLoss
from medssl.evaluation.linear_probe import LinearProbe
from medssl.evaluation.metrics import auroc, classification_metrics
from medssl.models.backbone import create_backbone
from medssl.training.optim import warmup_cosine
from tests.conftest import compose_config
from tests.evaluation.conftest import aggressive, imbalanced_five_class
from tests.evaluation.finetune_settings import PLAIN, finetune


def test_warmup_then_cosine_factors():
    # 4 warm-up updates of 20: 1/4, 2/4, 3/4, 1, then a cosine from 1 down towards 0.
    factors = [warmup_cosine(s, warmup_steps=4, total_steps=20) for s in range(20)]
    assert factors[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert factors[4:] == pytest.approx(
        [0.5 * (1 + math.cos(math.pi * (s - 4) / 16)) for s in range(4, 20)]
    )
    assert all(a >= b for a, b in zip(factors[3:], factors[4:], strict=False))
    assert factors[-1] < 0.01 and factors[-1] > 0
    # No warm-up: the cosine from the first update.
    assert warmup_cosine(0, warmup_steps=0, total_steps=10) == 1.0


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
    finetune(
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
    factors = [1.0, 1.0] + [warmup_cosine(s, warmup_steps=2, total_steps=8) for s in range(8)]
    assert len(seen) == 10
    np.testing.assert_allclose([lrs[0] for lrs in seen], [1e-2 * f for f in factors])
    np.testing.assert_allclose([lrs[1] for lrs in seen][2:], [1e-3 * f for f in factors[2:]])


def test_finetuning_from_the_probe_does_not_collapse_to_the_majority_class():
    """~100 labels, 50/25/12/8/5: a random head at this learning rate ends predicting (almost)
    only the majority class (balanced ACC near 1/5); started from the probe, and with that start
    kept as epoch 0 unless val improves on it, fine-tuning cannot fall below the probe on val."""
    inputs = imbalanced_five_class(1)
    probe = LinearProbe(Cs=(0.1, 1.0), max_iter=1000, class_weight="balanced", link="softmax")
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
    probe = LinearProbe(Cs=(1.0,), max_iter=1000, class_weight="balanced", link="softmax")
    _, _, linear = probe.select(inputs)
    tune = aggressive(probe, head="mlp", mlp_hidden=16, epochs=1)
    model = tune.build_model(inputs)
    tune.start_from_probe(model.head, inputs)
    expected = linear(torch.as_tensor(inputs.features("val"), dtype=torch.float32))
    torch.testing.assert_close(
        torch.as_tensor(finetune_predict.logits(model, inputs.images["val"], inputs)).float(),
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
    encoder = create_backbone(
        "mobilenetv3_small_050", 1, 12, small_input=True, pretrained=False, weights=None
    )
    assert (encoder.num_features, encoder.head_hidden_size) == (288, 1024)
    inputs = imbalanced_five_class(0)
    inputs.encoder = encoder
    model = aggressive(None).build_model(inputs)
    assert model.head.linear.in_features == 1024
    assert model(torch.zeros(2, 1, 12, 12)).shape == (2, 5)


def test_finetune_returns_the_probe_when_no_epoch_improves_on_it():
    """Epoch 0 competes: with no epochs that improve (lr 0), the probe itself is returned."""
    inputs = imbalanced_five_class(0)
    probe = LinearProbe(Cs=(1.0,), max_iter=1000, class_weight="balanced", link="softmax")
    out = aggressive(probe, lr=0.0, epochs=2, patience=1).evaluate(inputs)
    assert out.params["best_epoch"] == 0
    _, probe_val, head = probe.select(inputs)
    probe_test = head(torch.as_tensor(inputs.features("test"), dtype=torch.float32)).detach()
    np.testing.assert_allclose(out.test, probe_test.double().numpy(), atol=1e-4)
    assert auroc(
        "multiclass", inputs.labels["val"], logits_to_probs("multiclass", out.val)
    ) == pytest.approx(probe_val)


def test_plain_settings_are_the_configs_numbers():
    """The tests' plain fine-tuning differs from `eval=[finetune]` only in what it leaves out."""
    configured = compose_config(["eval=[finetune]"]).eval.finetune
    left_out = {"probe", "augmentation", "cam_refine", "mc_dropout"}
    assert {k: v for k, v in PLAIN.items() if k not in left_out} == {
        k: configured[k] for k in PLAIN if k not in left_out
    }
    assert set(PLAIN) == {k for k in configured if k != "_target_"}
