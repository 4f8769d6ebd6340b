"""Every loss of the zoo falls when a small network is optimised on it for a few steps."""

from __future__ import annotations

import pytest
import torch

from medssl.losses.byol import BYOLLoss
from tests.losses.paper_losses import barlow, dino, infonce, sicova, supcon, triplet

PAIR_LOSSES = {
    "barlow": lambda: barlow(off_diagonal_weight=0.05),
    "sicova": sicova,
    "byol": BYOLLoss,
    "infonce": infonce,
}


def _optimise(loss_fn, steps=30, seed=0):
    torch.manual_seed(seed)
    x = torch.randn(32, 10)
    labels = torch.arange(32) % 4
    net = torch.nn.Linear(10, 8)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05)
    values = []
    for _ in range(steps):
        a, b = net(x + 0.3 * torch.randn_like(x)), net(x + 0.3 * torch.randn_like(x))
        value = loss_fn(a, b, labels)
        values.append(value.item())
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
    return values


@pytest.mark.parametrize("name", sorted(PAIR_LOSSES))
def test_pair_loss_falls(name):
    loss = PAIR_LOSSES[name]()
    values = _optimise(lambda a, b, _: loss(a, b))
    assert sum(values[-5:]) < sum(values[:5])


def test_labelled_losses_fall():
    for loss in (triplet(margin=0.5), supcon(temperature=0.2)):
        values = _optimise(lambda a, b, y, loss=loss: loss(torch.cat([a, b]), torch.cat([y, y])))
        assert sum(values[-5:]) < sum(values[:5])


def test_dino_loss_falls():
    loss = dino(out_dim=8, teacher_temp=0.07, warmup_teacher_temp=0.07, warmup_fraction=0.0)
    values = _optimise(lambda a, b, _: loss([a, b], [b.detach(), a.detach()]))
    assert sum(values[-5:]) < sum(values[:5])
