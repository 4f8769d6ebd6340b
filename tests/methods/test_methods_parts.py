"""The pieces the methods share: momentum schedule and EMA, MoCo's queue, multi-size views,
the random-init floor, multi-crop."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from medssl.augment.multi_crop import MultiCrop
from medssl.augment.pipeline import ViewPipeline
from medssl.losses.byol import BYOLLoss
from medssl.methods.byol import BYOL
from medssl.methods.moco import MoCo, auto_queue_size
from medssl.methods.momentum import ema_update, frozen_copy, momentum_at
from medssl.methods.random_init import RandomInit
from tests.conftest import plain_crop
from tests.losses.paper_losses import dino, infonce
from tests.models.encoders import small_cnn


def test_momentum_rises_from_base_to_one_by_cosine():
    assert momentum_at(0.996, 0.0) == pytest.approx(0.996)
    assert momentum_at(0.996, 0.5) == pytest.approx(1 - 0.004 * 0.5)
    assert momentum_at(0.99, 1.0) == pytest.approx(1.0)
    for p in (0.1, 0.3, 0.7):
        assert momentum_at(0.99, p) == pytest.approx(1 - 0.01 * (math.cos(math.pi * p) + 1) / 2)
    assert momentum_at(0.999, 0.7, cosine=False) == 0.999
    with pytest.raises(ValueError, match="momentum"):
        momentum_at(1.5, 0.0)


def test_ema_update_follows_the_formula_and_targets_are_frozen():
    online = torch.nn.Linear(3, 2)
    target = frozen_copy(online)
    assert not any(p.requires_grad for p in target.parameters())
    with torch.no_grad():
        online.weight.add_(1.0)
    before = target.weight.clone()
    ema_update(target, online, 0.9)
    torch.testing.assert_close(target.weight, 0.9 * before + 0.1 * online.weight)


def test_byol_target_is_outside_the_optimiser_and_moves_only_on_step_end():
    method = BYOL(
        small_cnn(width=8),
        BYOLLoss(),
        proj_hidden_dim=16,
        proj_dim=8,
        pred_hidden_dim=16,
        base_momentum=0.996,
    )
    trainable = {id(p) for p in method.parameters() if p.requires_grad}
    assert all(id(p) not in trainable for p in method.target_backbone.parameters())
    views = [torch.randn(4, 1, 28, 28) for _ in range(2)]
    method(views)["loss"].backward()
    with torch.no_grad():
        for p in method.backbone.parameters():
            p.add_(0.1)
    target_before = [p.clone() for p in method.target_backbone.parameters()]
    method.on_step_end(0.0)  # m = base = 0.996
    for t, old, o in zip(
        method.target_backbone.parameters(),
        target_before,
        method.backbone.parameters(),
        strict=True,
    ):
        torch.testing.assert_close(t, 0.996 * old + 0.004 * o)


def test_moco_queue_is_sized_to_the_data_and_wraps_around():
    assert auto_queue_size(4708, 256) == 2304  # 9 batches: the most within half of PneumoniaMNIST
    assert auto_queue_size(546, 256) == 256  # never less than a batch
    assert auto_queue_size(10_000_000, 256) == 65536
    small = dict(proj_hidden_dim=16, proj_dim=8, momentum=0.999, max_queue_size=65536)
    method = MoCo(small_cnn(width=8), infonce(temperature=0.2), queue_size=6, **small)
    views = [torch.randn(4, 1, 28, 28) for _ in range(2)]
    method(views)
    assert int(method.queue_ptr) == 0  # 8 keys (two views of 4): the last 6 fill the queue
    method([torch.randn(2, 1, 28, 28) for _ in range(2)])
    assert int(method.queue_ptr) == 4
    assert torch.allclose(method.queue.norm(dim=1), torch.ones(6))
    auto = MoCo(small_cnn(width=8), infonce(temperature=0.2), queue_size="auto", **small)
    auto.prepare(n_images=100, batch_size=8)
    assert auto.queue.shape == (48, 8) and "queue" in auto.state_dict()


def test_encode_views_runs_the_backbone_once_per_size():
    calls = []
    backbone = small_cnn(width=8)
    backbone.register_forward_hook(lambda m, i, o: calls.append(tuple(i[0].shape)))
    method = RandomInit(backbone)
    views = [torch.randn(3, 1, 28, 28)] * 2 + [torch.randn(3, 1, 12, 12)] * 3
    features = method.encode_views(views)
    assert calls == [(6, 1, 28, 28), (9, 1, 12, 12)]
    assert [f.shape for f in features] == [(3, 32)] * 5


def test_multicrop_gives_global_then_local_views_of_the_right_sizes():
    crop = MultiCrop(
        ViewPipeline(2, cpu_threads=None, crop=plain_crop(scale=(0.4, 1.0), hflip_p=0.5, p=1.0)),
        ViewPipeline(3, cpu_threads=None, crop=plain_crop(scale=(0.05, 0.4), hflip_p=0.5, p=1.0)),
        local_size=0.43,
    )
    views = crop(
        torch.randint(0, 256, (4, 1, 28, 28), dtype=torch.uint8), torch.Generator().manual_seed(0)
    )
    assert [tuple(v.shape) for v in views] == [(4, 1, 28, 28)] * 2 + [(4, 1, 12, 12)] * 3
    with pytest.raises(ValueError, match="fraction"):
        MultiCrop(
            ViewPipeline(2, cpu_threads=None), ViewPipeline(2, cpu_threads=None), local_size=2.0
        )


def test_random_init_trains_nothing_and_still_encodes():
    method = RandomInit(small_cnn(width=8))
    assert method.trains is False
    out = method([torch.randn(4, 1, 28, 28)])
    assert out["loss"].item() == 0.0 and out["embedding"].shape == (4, 32)


def test_dino_head_batch_norm_separates_codes_of_features_sharing_one_direction():
    """Pooled ReLU features share a large positive direction; without BatchNorm in the head
    every image gets nearly the same code (the uniform-teacher collapse the config avoids)."""
    from medssl.models.heads import DINOHead

    g = torch.Generator().manual_seed(0)
    features = 5.0 + 0.1 * torch.randn(64, 32, generator=g)  # shared offset, small differences

    def mean_code_similarity(batch_norm: bool) -> float:
        torch.manual_seed(0)
        head = DINOHead(32, 64, 16, 128, batch_norm=batch_norm).train()
        with torch.no_grad():
            code = torch.nn.functional.normalize(head.mlp(features), dim=-1)
        similarity = code @ code.T
        return float(similarity[~torch.eye(64, dtype=torch.bool)].mean())

    assert mean_code_similarity(False) > 0.99
    assert mean_code_similarity(True) < 0.5


def small_dino(head_batch_norm: bool, encoder_from: str):
    """A tiny DINO with the paper's fixed teacher temperature (no warm-up) and EMA rate."""
    from medssl.methods.dino import DINO

    loss = dino(out_dim=32, teacher_temp=0.04, warmup_teacher_temp=0.04, warmup_fraction=0.0)
    return DINO(
        small_cnn(width=4),
        loss,
        head_hidden_dim=16,
        head_bottleneck_dim=8,
        out_dim=32,
        base_momentum=0.996,
        n_global_views=2,
        head_batch_norm=head_batch_norm,
        encoder_from=encoder_from,
    )


def test_dino_encoder_is_the_chosen_network_and_others_the_backbone():
    teacher = small_dino(head_batch_norm=True, encoder_from="teacher")
    assert teacher.encoder is teacher.teacher_backbone
    assert teacher.encoder is not teacher.backbone
    assert any(isinstance(m, torch.nn.BatchNorm1d) for m in teacher.head.modules())
    student = small_dino(head_batch_norm=False, encoder_from="student")
    assert student.encoder is student.backbone
    with pytest.raises(ValueError, match="encoder_from"):
        small_dino(head_batch_norm=False, encoder_from="ema")
    plain = RandomInit(small_cnn(width=4))
    assert plain.encoder is plain.backbone


@pytest.mark.parametrize("momentum", [0.1, None])
def test_frozen_running_stats_keep_batch_statistics_and_leave_the_averages(momentum):
    from medssl.models.batch_norm import running_stats_frozen

    torch.manual_seed(0)
    layer = torch.nn.BatchNorm2d(3, momentum=momentum).train()
    layer(torch.randn(8, 3, 5, 5))
    mean, var = layer.running_mean.clone(), layer.running_var.clone()
    count = layer.num_batches_tracked.clone()
    x = 3 + 2 * torch.randn(8, 3, 4, 4)
    with running_stats_frozen(torch.nn.Sequential(layer)):
        frozen_out = layer(x)
    assert torch.equal(layer.running_mean, mean) and torch.equal(layer.running_var, var)
    assert torch.equal(layer.num_batches_tracked, count) and layer.momentum == momentum
    expected = (x - x.mean((0, 2, 3), keepdim=True)) / torch.sqrt(
        x.var((0, 2, 3), unbiased=False, keepdim=True) + layer.eps
    )
    torch.testing.assert_close(frozen_out, expected)  # batch statistics, as in training
    layer(x)
    assert not torch.equal(layer.running_mean, mean)  # outside the block it tracks again


def test_dino_student_running_stats_come_from_the_global_views_only():
    torch.manual_seed(0)
    method = small_dino(head_batch_norm=False, encoder_from="teacher").train()
    reference = copy.deepcopy(method.backbone)
    global_views = [torch.rand(6, 1, 16, 16) for _ in range(2)]
    local_views = [3 * torch.rand(6, 1, 8, 8) for _ in range(2)]
    method(global_views + local_views)["loss"].backward()
    reference(torch.cat(global_views))
    for mine, theirs in zip(method.backbone.modules(), reference.modules(), strict=True):
        if isinstance(mine, torch.nn.BatchNorm2d):
            torch.testing.assert_close(mine.running_mean, theirs.running_mean)
            torch.testing.assert_close(mine.running_var, theirs.running_var)
    assert method.backbone.features[0][0].weight.grad is not None
