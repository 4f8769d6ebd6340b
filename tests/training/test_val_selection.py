"""Model selection on val during training, and the step-decay schedule of MedMNIST v2."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from medssl import MedsslError
from medssl.augment.pipeline import ViewPipeline
from medssl.evaluation.calibration import logits_to_probs
from medssl.evaluation.metrics import auroc
from medssl.methods.base import Method
from medssl.methods.supervised import Supervised
from medssl.models.small_cnn import SmallCNN
from medssl.training.optim import build_multistep_scheduler, build_optimizer
from medssl.training.pretrain import pretrain, pretrain_summary
from medssl.training.pretrain_settings import PretrainSettings
from medssl.training.val_selection import ValSelection


def val_auroc(labels, logits) -> float:
    return auroc("binary", labels, logits_to_probs("binary", logits))


class PeakingClassifier(Method):
    """Its classifier scores val brightness with a weight 1 - |t - 2| at t epochs of training:
    val AUROC 0.5, 1, 0.5, 0 after epochs 1-4, so epoch 2 is the one to keep."""

    uses_labels = True
    selects_on_val = True

    def __init__(self, epochs: int) -> None:
        super().__init__(SmallCNN(1, width=4, name="smallcnn", input_size=16))
        self.epochs = epochs
        self.register_buffer("t", torch.zeros(()))

    def forward(self, views, labels=None):
        features = self.backbone(views[0])
        return {"loss": 0.0 * features.sum(), "embedding": features.detach()}

    def on_step_end(self, progress: float) -> None:
        self.t.fill_(progress * self.epochs)

    def classify(self, x):
        weight = 1 - (self.t - 2).abs()
        score = weight * x.mean(dim=(1, 2, 3))
        return torch.stack([torch.zeros_like(score), score], dim=1)


class KilledSupervised(Supervised):
    die_at: int | None = None
    steps = 0

    def on_step_end(self, progress: float) -> None:
        self.steps += 1
        if self.die_at is not None and self.steps == self.die_at:
            raise KeyboardInterrupt  # not an Exception: nothing in the loop catches it


def _images(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Bright positives, dark negatives: brightness separates the classes."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 2
    noise = torch.randint(0, 40, (n, 1, 16, 16), generator=generator)
    return (60 + 120 * labels[:, None, None, None] + noise).to(torch.uint8), labels


def _pretrain(method, run_dir, epochs: int, selection: ValSelection) -> list[dict]:
    images, labels = _images(16, seed=1)
    return pretrain(
        method,
        ViewPipeline(n_views=1, cpu_threads=None),
        images,
        labels,
        PretrainSettings(
            epochs=epochs,
            batch_size=8,
            precision="fp32",
            seed=0,
            accumulate_steps=1,
            collapse_min_std=0.01,
            collapse_min_rank=2.0,
            eval_every=None,
            keep_epochs=(),
            checkpoint_every=None,
        ),
        optimizer_factory=functools.partial(
            build_optimizer,
            name="adam",
            base_lr=1e-2,
            ref_batch_size=256,
            weight_decay=1e-4,
            momentum=0.9,
        ),
        scheduler_factory=functools.partial(
            build_multistep_scheduler, milestones=[2], gamma=0.1, warmup_epochs=0
        ),
        device=torch.device("cpu"),
        run_dir=run_dir,
        fingerprint="selection",
        selection=selection,
    )


def _selection() -> ValSelection:
    images, labels = _images(16, seed=2)
    return ValSelection(images, labels, score=val_auroc)


def test_selection_keeps_the_epoch_where_val_auroc_peaks(tmp_path):
    method = PeakingClassifier(epochs=4)
    history = _pretrain(method, tmp_path, epochs=4, selection=_selection())
    scores = [h["select/val_auroc"] for h in history]
    assert scores == pytest.approx([0.5, 1.0, 0.5, 0.0])
    assert [h["select/best_epoch"] for h in history] == [1, 2, 2, 2]
    assert float(method.t) == pytest.approx(2.0)  # the method is left at epoch 2
    summary = pretrain_summary(history)
    assert summary["pretrain/selected_epoch"] == 2
    assert summary["pretrain/selected_val_auroc"] == pytest.approx(1.0)


def _supervised(die_at=None) -> KilledSupervised:
    torch.manual_seed(0)
    method = KilledSupervised(
        SmallCNN(1, width=8, name="smallcnn", input_size=16),
        "binary",
        2,
        label_smoothing=0.0,
        select_on_val=True,
        class_weight=None,
        train_labels=torch.zeros(0),  # read only for class_weight=balanced
    )
    method.die_at = die_at
    return method


def test_a_resumed_run_selects_the_same_epoch_and_ends_bit_exact(tmp_path):
    straight = _supervised()
    history = _pretrain(straight, tmp_path / "straight", epochs=3, selection=_selection())
    with pytest.raises(KeyboardInterrupt):  # killed in epoch 3 (2 steps per epoch)
        _pretrain(_supervised(die_at=5), tmp_path / "killed", 3, _selection())
    saved = torch.load(tmp_path / "killed" / "checkpoints" / "last.pt", weights_only=True)
    assert saved["selection"]["best_epoch"] >= 1 and saved["selection"]["best_state"]
    resumed = _supervised()
    resumed_history = _pretrain(resumed, tmp_path / "killed", epochs=3, selection=_selection())
    assert [h["select/best_epoch"] for h in resumed_history] == [
        h["select/best_epoch"] for h in history
    ]
    assert [h["select/val_auroc"] for h in resumed_history] == [
        h["select/val_auroc"] for h in history
    ]
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_multistep_schedule_decays_at_the_milestone_epochs_as_pytorch_does():
    weights = [torch.nn.Parameter(torch.zeros(1))]
    ours = torch.optim.Adam(weights, lr=1e-3)
    schedule = build_multistep_scheduler(
        ours, epochs=100, steps_per_epoch=4, milestones=[50, 75], gamma=0.1, warmup_epochs=0
    )
    theirs = torch.optim.Adam(weights, lr=1e-3)
    reference = torch.optim.lr_scheduler.MultiStepLR(theirs, milestones=[50, 75], gamma=0.1)
    for epoch in range(100):
        for step in range(4):  # per step here, per epoch in PyTorch: the same rate all epoch
            schedule.step_update(epoch * 4 + step)
            assert ours.param_groups[0]["lr"] == pytest.approx(theirs.param_groups[0]["lr"])
        theirs.step()
        reference.step()
    schedule.step_update(199)
    assert ours.param_groups[0]["lr"] == pytest.approx(1e-3)  # epoch 50 (index 49)
    schedule.step_update(200)
    assert ours.param_groups[0]["lr"] == pytest.approx(1e-4)  # epoch 51: the first decayed
    schedule.step_update(300)
    assert ours.param_groups[0]["lr"] == pytest.approx(1e-5)


def test_multistep_warm_up_rises_linearly_and_bad_milestones_are_refused():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.4)
    schedule = build_multistep_scheduler(
        optimizer, epochs=10, steps_per_epoch=2, milestones=[5], gamma=0.5, warmup_epochs=2
    )
    lrs = []
    for step in range(20):
        schedule.step_update(step)
        lrs.append(optimizer.param_groups[0]["lr"])
    assert lrs[:4] == pytest.approx([0.1, 0.2, 0.3, 0.4])
    assert lrs[9] == pytest.approx(0.4) and lrs[10] == pytest.approx(0.2)
    for milestones in ([75, 50], [0, 10]):
        with pytest.raises(MedsslError, match="increasing positive epochs"):
            build_multistep_scheduler(
                optimizer, 10, 2, milestones=milestones, gamma=0.1, warmup_epochs=0
            )
    with pytest.raises(MedsslError, match=r"gamma must lie in \(0, 1\]"):
        build_multistep_scheduler(optimizer, 10, 2, milestones=[5], gamma=2.0, warmup_epochs=0)


def test_selection_without_a_finite_score_keeps_the_last_epoch():
    method = PeakingClassifier(epochs=1)
    images, _ = _images(4, seed=3)
    selection = ValSelection(images, torch.zeros(4, dtype=torch.long), score=val_auroc)
    record = selection.end_epoch(method, 1, torch.device("cpu"), "fp32")  # one class: NaN
    assert record == {"select/val_auroc": None, "select/best_epoch": 0}
    method.t.fill_(5.0)
    selection.restore(method)
    assert float(method.t) == 5.0 and np.isinf(selection.best_score)
