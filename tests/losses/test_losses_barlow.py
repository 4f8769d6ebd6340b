"""Barlow Twins and SiCoVa against direct computations written from the papers' equations."""

from __future__ import annotations

import math

import pytest
import torch

from tests.losses.paper_losses import barlow, sicova, vicreg


def correlation_by_loop(z_a, z_b, eps=1e-5):
    """Zbontar et al. 2021, eq. (2): batch-standardised dimensions, C_ij summed sample by sample."""
    z_a, z_b = z_a.double(), z_b.double()
    n, d = z_a.shape

    def standardised(z, j):
        col = z[:, j]
        mean = float(col.sum()) / n
        var = sum((float(v) - mean) ** 2 for v in col) / n
        return [(float(v) - mean) / math.sqrt(var + eps) for v in col]

    a = [standardised(z_a, j) for j in range(d)]
    b = [standardised(z_b, j) for j in range(d)]
    return [[sum(a[i][k] * b[j][k] for k in range(n)) / n for j in range(d)] for i in range(d)]


def barlow_by_loop(z_a, z_b, lam):
    c = correlation_by_loop(z_a, z_b)
    d = len(c)
    on = sum((1 - c[i][i]) ** 2 for i in range(d))
    off = sum(c[i][j] ** 2 for i in range(d) for j in range(d) if i != j)
    return on + lam * off, on, off


@pytest.mark.parametrize("lam", [0.0, 5e-3, 0.5])
def test_barlow_matches_the_paper(lam):
    g = torch.Generator().manual_seed(0)
    z_a, z_b = torch.randn(9, 5, generator=g), 2 * torch.randn(9, 5, generator=g) + 1
    expected, on, off = barlow_by_loop(z_a, z_b, lam)
    loss = barlow(off_diagonal_weight=lam)
    terms = loss.terms(z_a, z_b)
    assert terms["invariance"].item() == pytest.approx(on, rel=1e-5)
    assert terms["redundancy"].item() == pytest.approx(off, rel=1e-5)
    assert loss(z_a, z_b).item() == pytest.approx(expected, rel=1e-5)


def test_barlow_is_symmetric_and_zero_for_identical_decorrelated_views():
    g = torch.Generator().manual_seed(1)
    z_a, z_b = torch.randn(16, 6, generator=g), torch.randn(16, 6, generator=g)
    loss = barlow(off_diagonal_weight=0.1)
    assert loss(z_a, z_b).item() == pytest.approx(loss(z_b, z_a).item(), rel=1e-6)
    # Centred, orthogonal columns: identical views give C = identity and a loss of ~0.
    centred = torch.randn(16, 6, generator=g)
    q, _ = torch.linalg.qr(centred - centred.mean(0))
    assert loss(q, q).item() == pytest.approx(0.0, abs=1e-3)
    assert loss.terms(z_a, z_a)["invariance"].item() == pytest.approx(0.0, abs=1e-3)


@pytest.mark.parametrize("weight", [0.0, 1.0, 3.0])
def test_sicova_is_vicreg_plus_the_weighted_correlation_term(weight):
    g = torch.Generator().manual_seed(2)
    z_a, z_b = torch.randn(10, 4, generator=g), torch.randn(10, 4, generator=g)
    lam = 5e-3
    loss = sicova(correlation_weight=weight, off_diagonal_weight=lam)
    _, on, off = barlow_by_loop(z_a, z_b, lam)
    expected = vicreg()(z_a, z_b).item() + weight * (on + lam * off) / 4
    assert loss(z_a, z_b).item() == pytest.approx(expected, rel=1e-5)
    assert loss(z_a, z_b).item() == pytest.approx(loss(z_b, z_a).item(), rel=1e-6)
    assert set(loss.terms(z_a, z_b)) == {"invariance", "variance", "covariance", "correlation"}


@pytest.mark.parametrize("loss", [barlow(), sicova()])
def test_bad_shapes_are_refused(loss):
    with pytest.raises(ValueError, match="batch, dim"):
        loss(torch.randn(4, 2, 3), torch.randn(4, 2, 3))
    with pytest.raises(ValueError, match="differ in shape"):
        loss(torch.randn(4, 3), torch.randn(4, 5))
    with pytest.raises(ValueError, match="at least 2"):
        loss(torch.randn(1, 3), torch.randn(1, 3))
