"""NT-Xent and VICReg against direct computations written from the papers' equations."""

from __future__ import annotations

import math

import pytest
import torch

from tests.losses.paper_losses import nt_xent, vicreg


def nt_xent_by_loop(z_a, z_b, t):
    """Chen et al. 2020, eq. (1), averaged over all 2N anchors, one term at a time."""
    z = torch.cat([z_a, z_b]).double()
    n = len(z_a)
    sim = lambda i, j: float(z[i] @ z[j] / (z[i].norm() * z[j].norm()))  # noqa: E731
    total = 0.0
    for i in range(2 * n):
        j = (i + n) % (2 * n)
        denominator = sum(math.exp(sim(i, k) / t) for k in range(2 * n) if k != i)
        total += -math.log(math.exp(sim(i, j) / t) / denominator)
    return total / (2 * n)


def vicreg_by_loop(z_a, z_b, lam=25.0, mu=25.0, nu=1.0, gamma=1.0, eps=1e-4):
    """Bardes et al. 2022, eq. (1)-(5), with plain loops over dimensions and pairs."""
    z_a, z_b = z_a.double(), z_b.double()
    n, d = z_a.shape

    def v(z):
        total = 0.0
        for j in range(d):
            col = z[:, j]
            var = float(((col - col.mean()) ** 2).sum() / (n - 1))
            total += max(0.0, gamma - math.sqrt(var + eps))
        return total / d

    def c(z):
        zc = z - z.mean(0)
        total = 0.0
        for i in range(d):
            for j in range(d):
                if i != j:
                    total += float((zc[:, i] * zc[:, j]).sum() / (n - 1)) ** 2
        return total / d

    s = float(((z_a - z_b) ** 2).sum()) / (n * d)
    return lam * s + mu * (v(z_a) + v(z_b)) + nu * (c(z_a) + c(z_b))


@pytest.mark.parametrize("temperature", [0.1, 0.5, 1.0])
def test_nt_xent_matches_the_paper(temperature):
    g = torch.Generator().manual_seed(0)
    z_a, z_b = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)
    ours = nt_xent(temperature=temperature)(z_a, z_b)
    assert ours.item() == pytest.approx(nt_xent_by_loop(z_a, z_b, temperature), rel=1e-5)


def test_nt_xent_is_symmetric_and_low_for_identical_views():
    g = torch.Generator().manual_seed(1)
    z_a, z_b = torch.randn(8, 16, generator=g), torch.randn(8, 16, generator=g)
    loss = nt_xent(temperature=0.1)
    assert loss(z_a, z_b).item() == pytest.approx(loss(z_b, z_a).item(), rel=1e-6)
    assert loss(z_a, z_a) < loss(z_a, z_b)


@pytest.mark.parametrize("scale", [0.05, 1.0, 3.0])
def test_vicreg_matches_the_paper(scale):
    g = torch.Generator().manual_seed(2)
    z_a, z_b = scale * torch.randn(10, 6, generator=g), scale * torch.randn(10, 6, generator=g)
    ours = vicreg()(z_a, z_b)
    assert ours.item() == pytest.approx(vicreg_by_loop(z_a, z_b), rel=1e-5)


def test_vicreg_variance_term_is_the_sum_over_branches_not_the_mean():
    # Collapsed embeddings: std = sqrt(eps) in every dimension of both branches, so the paper's
    # v(Z) + v(Z') is 2 * (1 - 0.01) and the variance part of the loss is 25 * 1.98.
    z = torch.zeros(4, 3)
    terms = vicreg().terms(z, z)
    assert terms["variance"].item() == pytest.approx(2 * (1 - 0.01), rel=1e-6)
    assert vicreg()(z, z).item() == pytest.approx(25 * 1.98, rel=1e-6)


def test_vicreg_is_symmetric():
    g = torch.Generator().manual_seed(3)
    z_a, z_b = torch.randn(10, 6, generator=g), torch.randn(10, 6, generator=g)
    loss = vicreg()
    assert loss(z_a, z_b).item() == pytest.approx(loss(z_b, z_a).item(), rel=1e-6)


@pytest.mark.parametrize("loss", [nt_xent(), vicreg()])
def test_bad_shapes_are_refused_with_a_clear_message(loss):
    with pytest.raises(ValueError, match="batch, dim"):
        loss(torch.randn(4, 2, 3), torch.randn(4, 2, 3))
    with pytest.raises(ValueError, match="differ in shape"):
        loss(torch.randn(4, 3), torch.randn(5, 3))
    with pytest.raises(ValueError, match="at least 2"):
        loss(torch.randn(1, 3), torch.randn(1, 3))


@pytest.mark.parametrize("loss", [nt_xent(temperature=0.2), vicreg()])
def test_loss_falls_when_optimised(loss):
    torch.manual_seed(0)
    x = torch.randn(32, 10)
    net = torch.nn.Linear(10, 8)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05)
    noisy = lambda: x + 0.3 * torch.randn_like(x)  # noqa: E731
    first = None
    for _ in range(30):
        value = loss(net(noisy()), net(noisy()))
        first = value.item() if first is None else first
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
    assert value.item() < first
