"""DINO's loss against a loop written from the paper's Algorithm 1."""

from __future__ import annotations

import math

import pytest
import torch

from tests.losses.paper_losses import dino


def dino_by_loop(student, teacher, center, t_t, t_s):
    """Caron et al. 2021, Algorithm 1: H(P_t(v), P_s(v')) over pairs v != v', averaged."""
    total, pairs = 0.0, 0
    for i, t in enumerate(teacher):
        for j, s in enumerate(student):
            if i == j:
                continue
            for b in range(len(t)):
                tz = [(float(t[b, k]) - float(center[k])) / t_t for k in range(t.shape[1])]
                sz = [float(s[b, k]) / t_s for k in range(s.shape[1])]
                t_norm = sum(math.exp(v) for v in tz)
                s_log_norm = math.log(sum(math.exp(v) for v in sz))
                total += -sum(
                    math.exp(tz[k]) / t_norm * (sz[k] - s_log_norm) for k in range(len(tz))
                ) / len(t)
            pairs += 1
    return total / pairs


def test_dino_matches_the_paper_and_moves_the_center():
    g = torch.Generator().manual_seed(0)
    student = [torch.randn(4, 6, generator=g) for _ in range(4)]  # 2 global + 2 local
    teacher = [torch.randn(4, 6, generator=g) for _ in range(2)]
    loss = dino(
        out_dim=6,
        teacher_temp=0.07,
        warmup_teacher_temp=0.07,
        warmup_fraction=0.0,
        student_temp=0.1,
        center_momentum=0.9,
    )
    loss.center.copy_(torch.randn(1, 6, generator=g))
    before = loss.center.clone()
    ours = loss(student, teacher)
    assert ours.item() == pytest.approx(
        dino_by_loop(student, teacher, before[0], 0.07, 0.1), rel=1e-5
    )
    expected_center = 0.9 * before + 0.1 * torch.cat(teacher).mean(0, keepdim=True)
    torch.testing.assert_close(loss.center, expected_center)
    loss.eval()
    loss(student, teacher)
    torch.testing.assert_close(loss.center, expected_center)  # evaluation leaves it alone


def test_dino_is_symmetric_in_the_two_global_views():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(5, 8, generator=g), torch.randn(5, 8, generator=g)
    ta, tb = torch.randn(5, 8, generator=g), torch.randn(5, 8, generator=g)
    loss = dino(out_dim=8, teacher_temp=0.04, warmup_teacher_temp=0.04, warmup_fraction=0.0).eval()
    assert loss([a, b], [ta, tb]).item() == pytest.approx(loss([b, a], [tb, ta]).item(), rel=1e-6)


def test_dino_teacher_temperature_warms_up_with_progress():
    loss = dino(out_dim=3, warmup_teacher_temp=0.04, teacher_temp=0.07, warmup_fraction=0.5)
    assert loss.current_teacher_temp() == pytest.approx(0.04)
    loss.progress.fill_(0.25)
    assert loss.current_teacher_temp() == pytest.approx(0.055)
    loss.progress.fill_(0.9)
    assert loss.current_teacher_temp() == pytest.approx(0.07)


def test_dino_bad_shapes_are_refused():
    loss = dino(out_dim=4, teacher_temp=0.04, warmup_teacher_temp=0.04, warmup_fraction=0.0)
    with pytest.raises(ValueError, match=r"\(batch, 4\)"):
        loss([torch.randn(3, 5), torch.randn(3, 5)], [torch.randn(3, 5)])
    with pytest.raises(ValueError, match="student views"):
        loss([torch.randn(3, 4)], [torch.randn(3, 4), torch.randn(3, 4)])
