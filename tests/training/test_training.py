"""Training features: accumulation, the online probe, collapse monitors, optimisers, the random
floor, and resume of the new state (EMA targets, MoCo's queue, DINO's centre, the probe)."""

from __future__ import annotations

import functools

import pytest
import torch
from timm.optim import Lars

from medssl.augment.pipeline import ViewPipeline
from medssl.losses.byol import BYOLLoss
from medssl.losses.dino import DINOLoss
from medssl.losses.infonce import InfoNCELoss
from medssl.losses.nt_xent import NTXentLoss
from medssl.methods.byol import BYOL
from medssl.methods.dino import DINO
from medssl.methods.moco import MoCo
from medssl.methods.random_init import RandomInit
from medssl.methods.simclr import SimCLR
from medssl.models.small_cnn import SmallCNN
from medssl.training.collapse import CollapseMonitor, effective_rank, normalised_std
from medssl.training.online_probe import ProbeData
from medssl.training.optim import build_optimizer, build_scheduler
from medssl.training.pretrain import pretrain, pretrain_summary
from tests.conftest import loop_settings, plain_crop

N = 64


def _images(seed=1, n=N):
    return torch.randint(
        0, 256, (n, 1, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed)
    )


def _probe_data():
    labels = torch.arange(N) % 2
    labelled = torch.zeros(N, dtype=torch.bool)
    labelled[::2] = True
    labelled[1::4] = True
    return ProbeData(
        labels=labels,
        labelled=labelled,
        val_images=_images(2, 20),
        val_labels=torch.arange(20) % 2,
        task="binary",
        num_classes=2,
    )


def _encoder() -> SmallCNN:
    return SmallCNN(1, width=8, name="smallcnn", input_size=16)


METHODS = {
    "simclr": lambda: SimCLR(
        _encoder(), NTXentLoss(temperature=0.2, gather=True), proj_hidden_dim=16, proj_dim=8
    ),
    "byol": lambda: BYOL(
        _encoder(),
        BYOLLoss(),
        proj_hidden_dim=16,
        proj_dim=8,
        pred_hidden_dim=16,
        base_momentum=0.996,
    ),
    "moco": lambda: MoCo(
        _encoder(),
        InfoNCELoss(temperature=0.2, gather=True),
        proj_hidden_dim=16,
        proj_dim=8,
        momentum=0.999,
        queue_size="auto",
        max_queue_size=65536,
    ),
    "dino": lambda: DINO(
        _encoder(),
        DINOLoss(
            out_dim=16,
            teacher_temp=0.04,
            warmup_teacher_temp=0.04,
            warmup_fraction=0.5,
            student_temp=0.1,
            center_momentum=0.9,
        ),
        head_hidden_dim=16,
        head_bottleneck_dim=8,
        out_dim=16,
        base_momentum=0.996,
        n_global_views=2,
        head_batch_norm=False,
        encoder_from="teacher",
    ),
}


def _train(
    name,
    run_dir,
    *,
    epochs=2,
    batch_size=16,
    accumulate_steps=1,
    kill_after=None,
    probe=True,
    optimizer_factory=None,
):
    torch.manual_seed(0)
    method = METHODS[name]()
    if kill_after is not None:
        calls = {"n": 0}
        original = method.on_step_end

        def on_step_end(progress):
            original(progress)
            calls["n"] += 1
            if calls["n"] == kill_after:
                raise KeyboardInterrupt  # a run killed mid-epoch

        method.on_step_end = on_step_end
    history = pretrain(
        method,
        ViewPipeline(n_views=2, cpu_threads=None, crop=plain_crop(hflip_p=0.5, p=1.0)),
        _images(),
        None,
        loop_settings(
            epochs=epochs,
            batch_size=batch_size,
            precision="fp32",
            seed=0,
            accumulate_steps=accumulate_steps,
        ),
        optimizer_factory=optimizer_factory
        or functools.partial(
            build_optimizer,
            name="adamw",
            base_lr=1e-2,
            ref_batch_size=256,
            weight_decay=1e-4,
            momentum=0.9,
        ),
        scheduler_factory=functools.partial(
            build_scheduler, warmup_epochs=0.5, min_lr_ratio=0.0, warmup_lr_ratio=0.0
        ),
        device=torch.device("cpu"),
        run_dir=run_dir,
        fingerprint=name,
        probe_data=_probe_data() if probe else None,
    )
    return method, history


@pytest.mark.parametrize("name", ["byol", "moco", "dino"])
def test_resume_restores_targets_queues_centres_and_probe(name, tmp_path):
    straight, straight_history = _train(name, tmp_path / "straight")
    with pytest.raises(KeyboardInterrupt):
        _train(name, tmp_path / "killed", kill_after=6)  # 4 steps per epoch: dies in epoch 2
    resumed, resumed_history = _train(name, tmp_path / "killed")
    a, b = straight.state_dict(), resumed.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], msg=key)
    assert resumed_history[-1]["val/probe_acc"] == straight_history[-1]["val/probe_acc"]
    assert resumed_history[-1]["loss"] == pytest.approx(straight_history[-1]["loss"])


def test_each_epoch_logs_the_probe_and_the_collapse_monitors(tmp_path):
    _, history = _train("simclr", tmp_path)
    for record in history:
        assert 0.0 <= record["val/probe_acc"] <= 1.0
        assert record["probe/loss"] > 0
        assert record["collapse/std"] > 0 and record["collapse/effective_rank"] >= 1
        assert record["collapse/collapsed"] is False
    summary = pretrain_summary(history)
    assert summary["pretrain/collapsed"] is False
    assert summary["pretrain/val_probe_acc"] == history[-1]["val/probe_acc"]


def test_accumulation_takes_fewer_steps_and_scales_the_lr_with_the_effective_batch(tmp_path):
    batches = []

    def factory(model, batch_size):
        batches.append(batch_size)
        return build_optimizer(
            model,
            batch_size,
            name="adamw",
            base_lr=1e-2,
            ref_batch_size=256,
            weight_decay=1e-4,
            momentum=0.9,
        )

    method, history = _train(
        "simclr",
        tmp_path,
        epochs=1,
        batch_size=8,
        accumulate_steps=2,
        optimizer_factory=factory,
        probe=False,
    )
    assert batches == [16]
    optimizer_steps = {
        int(s["step"])
        for s in torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)["optimizer"][
            "state"
        ].values()
    }
    assert optimizer_steps == {N // 16}  # 8 batches of 8, two per step


def test_the_random_floor_is_not_trained(tmp_path):
    method = RandomInit(_encoder())
    before = {k: v.clone() for k, v in method.state_dict().items()}
    history = pretrain(
        method,
        ViewPipeline(n_views=2, cpu_threads=None),
        _images(),
        None,
        loop_settings(epochs=5, batch_size=16, precision="fp32", seed=0),
        optimizer_factory=None,
        scheduler_factory=None,
        device=torch.device("cpu"),
        run_dir=tmp_path,
        fingerprint="r",
    )
    assert history == [] and not (tmp_path / "checkpoints").exists()
    for key, value in method.state_dict().items():
        torch.testing.assert_close(value, before[key])
    assert pretrain_summary(history)["pretrain/collapsed"] is None


def test_collapse_measures_follow_their_definitions():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(50, 6, generator=g) @ torch.diag(torch.tensor([3.0, 2, 1, 1, 0.5, 0.1]))
    unit = z / z.norm(dim=1, keepdim=True)
    assert normalised_std(z) == pytest.approx(float(unit.std(dim=0).mean() * 6**0.5), rel=1e-5)
    s = torch.linalg.svdvals(z.double())
    p = s / s.sum()
    assert effective_rank(z) == pytest.approx(float(torch.exp(-(p * p.log()).sum())), rel=1e-4)
    monitor = CollapseMonitor(min_std=0.01, min_rank=2.0, max_rows=40)
    monitor.add(torch.ones(30, 6))
    monitor.add(torch.ones(30, 6) + 1e-6 * torch.randn(30, 6, generator=g))
    summary = monitor.summary()
    assert summary["collapse/collapsed"] is True and summary["collapse/effective_rank"] < 1.1
    monitor.add(torch.randn(40, 6, generator=g))
    assert monitor.summary()["collapse/collapsed"] is False


@pytest.mark.parametrize(
    ("name", "cls"), [("lars", Lars), ("sgd", torch.optim.SGD), ("adamw", torch.optim.AdamW)]
)
def test_optimisers_by_name_with_the_lr_scaled_by_batch(name, cls):
    optimizer = build_optimizer(
        torch.nn.Linear(3, 2),
        batch_size=64,
        name=name,
        base_lr=0.2,
        ref_batch_size=256,
        weight_decay=1e-4,
        momentum=0.9,
    )
    assert isinstance(optimizer, cls)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.2 * 64 / 256)
