"""BYOL regression and MoCo InfoNCE against direct computations from the papers' equations."""

from __future__ import annotations

import math

import pytest
import torch

from medssl.losses.byol import BYOLLoss
from tests.losses.paper_losses import infonce


def unit(v):
    return v / v.norm()


def byol_by_loop(p, z):
    """Grill et al. 2020, eq. (2): ||p/||p|| - z/||z|| ||^2, averaged over the batch."""
    p, z = p.double(), z.double()
    return sum(float(((unit(p[i]) - unit(z[i])) ** 2).sum()) for i in range(len(p))) / len(p)


def infonce_by_loop(q, k, t, queue=None):
    """He et al. 2020, eq. (1): positive k+, negatives from the queue or the other keys."""
    q, k = q.double(), k.double()
    total = 0.0
    for i in range(len(q)):
        qi = unit(q[i])
        pos = math.exp(float(qi @ unit(k[i])) / t)
        if queue is None:
            negs = [math.exp(float(qi @ unit(k[j])) / t) for j in range(len(k)) if j != i]
        else:
            negs = [math.exp(float(qi @ unit(n.double())) / t) for n in queue]
        total += -math.log(pos / (pos + sum(negs)))
    return total / len(q)


def test_byol_matches_the_paper_and_gives_no_gradient_to_the_target():
    g = torch.Generator().manual_seed(0)
    p = torch.randn(7, 5, generator=g, requires_grad=True)
    z = torch.randn(7, 5, generator=g, requires_grad=True)
    loss = BYOLLoss()(p, z)
    assert loss.item() == pytest.approx(byol_by_loop(p.detach(), z.detach()), rel=1e-5)
    loss.backward()
    assert p.grad is not None and z.grad is None
    assert BYOLLoss()(z.detach(), z.detach()).item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("temperature", [0.1, 0.2, 1.0])
def test_infonce_in_batch_matches_the_paper(temperature):
    g = torch.Generator().manual_seed(1)
    q, k = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    ours = infonce(temperature=temperature)(q, k)
    assert ours.item() == pytest.approx(infonce_by_loop(q, k, temperature), rel=1e-5)


def test_infonce_with_a_queue_matches_the_paper():
    g = torch.Generator().manual_seed(2)
    q, k, queue = (
        torch.randn(5, 4, generator=g),
        torch.randn(5, 4, generator=g),
        torch.randn(11, 4, generator=g),
    )
    ours = infonce(temperature=0.2)(q, k, queue)
    assert ours.item() == pytest.approx(infonce_by_loop(q, k, 0.2, queue), rel=1e-5)


def test_infonce_is_symmetric_in_batch_and_keys_get_no_gradient():
    g = torch.Generator().manual_seed(3)
    q = torch.randn(6, 4, generator=g, requires_grad=True)
    k = torch.randn(6, 4, generator=g, requires_grad=True)
    loss = infonce(temperature=0.5)
    # Swapping queries and keys transposes the logits; the mean loss is not symmetric in
    # general, but it is for identical inputs, and aligned pairs beat random ones.
    assert loss(q, q).item() < loss(q, k).item()
    loss(q, k).backward()
    assert q.grad is not None and k.grad is None


def test_infonce_bad_shapes_are_refused():
    loss = infonce()
    with pytest.raises(ValueError, match="differ in shape"):
        loss(torch.randn(4, 3), torch.randn(4, 5))
    with pytest.raises(ValueError, match="queue"):
        loss(torch.randn(4, 3), torch.randn(4, 3), torch.randn(10, 5))
    with pytest.raises(ValueError, match="batch, dim"):
        BYOLLoss()(torch.randn(4), torch.randn(4))
