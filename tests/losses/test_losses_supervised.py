"""Triplet (all valid triplets, margin, distance power) and SupCon against direct loops."""

from __future__ import annotations

import math

import pytest
import torch

from medssl.losses.triplet import valid_triplets
from tests.losses.paper_losses import supcon, triplet


def unit(v):
    return v / v.norm()


def triplet_by_loop(z, labels, margin, gamma):
    z = z.double()
    n = len(z)
    d = lambda i, j: float((unit(z[i]) - unit(z[j])).norm()) ** gamma  # noqa: E731
    values = [
        max(0.0, d(a, p) - d(a, q) + margin)
        for a in range(n)
        for p in range(n)
        for q in range(n)
        if a != p and labels[a] == labels[p] and labels[a] != labels[q]
    ]
    return sum(values) / len(values)


def supcon_by_loop(z, labels, t):
    """Khosla et al. 2020, eq. (2): L^sup_out, one anchor and one positive at a time."""
    z = z.double()
    n = len(z)
    s = lambda i, j: float(unit(z[i]) @ unit(z[j])) / t  # noqa: E731
    total, anchors = 0.0, 0
    for i in range(n):
        positives = [p for p in range(n) if p != i and labels[p] == labels[i]]
        if not positives:
            continue
        denominator = sum(math.exp(s(i, a)) for a in range(n) if a != i)
        total += -sum(math.log(math.exp(s(i, p)) / denominator) for p in positives) / len(positives)
        anchors += 1
    return total / anchors


@pytest.mark.parametrize(("margin", "gamma"), [(0.2, 1.0), (0.5, 2.0), (0.1, 0.5)])
def test_triplet_matches_a_loop_over_all_valid_triplets(margin, gamma):
    g = torch.Generator().manual_seed(0)
    z = torch.randn(9, 4, generator=g)
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 0, 1])
    ours = triplet(margin=margin, gamma=gamma)(z, labels)
    assert ours.item() == pytest.approx(
        triplet_by_loop(z, labels.tolist(), margin, gamma), rel=1e-5
    )


def triplet_by_explicit_mask(z, labels, margin, gamma):
    """The (batch, batch, batch) boolean-mask form the loss sums without materialising."""
    z = torch.nn.functional.normalize(z, dim=1)
    d = torch.cdist(z, z).clamp_min(1e-6).pow(gamma)
    violation = torch.relu(d[:, :, None] - d[:, None, :] + margin)
    return violation[valid_triplets(labels)].mean()


@pytest.mark.parametrize(("margin", "gamma"), [(0.2, 1.0), (0.5, 2.0), (0.05, 0.5)])
def test_triplet_equals_the_explicit_mask_in_value_and_gradient(margin, gamma):
    g = torch.Generator().manual_seed(5)
    labels = torch.randint(0, 3, (64,), generator=g)
    z = torch.randn(64, 8, generator=g)
    z_ours, z_ref = z.clone().requires_grad_(True), z.clone().requires_grad_(True)
    ours = triplet(margin=margin, gamma=gamma)(z_ours, labels)
    ref = triplet_by_explicit_mask(z_ref, labels, margin, gamma)
    ours.backward()
    ref.backward()
    assert ours.item() == pytest.approx(ref.item(), rel=1e-5)
    torch.testing.assert_close(z_ours.grad, z_ref.grad, rtol=1e-4, atol=1e-6)


def test_triplet_is_invariant_to_the_order_of_the_batch_and_zero_without_triplets():
    g = torch.Generator().manual_seed(1)
    z, labels = torch.randn(8, 4, generator=g), torch.tensor([0, 1] * 4)
    perm = torch.randperm(8, generator=g)
    loss = triplet(margin=0.3, gamma=1.5)
    assert loss(z, labels).item() == pytest.approx(loss(z[perm], labels[perm]).item(), rel=1e-6)
    z.requires_grad_(True)
    single_class = loss(z, torch.zeros(8, dtype=torch.long))
    single_class.backward()
    assert single_class.item() == 0.0 and z.grad is not None


def test_triplet_multilabel_class_is_the_whole_label_vector():
    g = torch.Generator().manual_seed(2)
    z = torch.randn(6, 3, generator=g)
    vectors = torch.tensor([[1, 0], [1, 0], [1, 1], [1, 1], [0, 1], [0, 1]])
    as_classes = torch.tensor([0, 0, 1, 1, 2, 2])
    loss = triplet(margin=0.2)
    assert loss(z, vectors).item() == pytest.approx(loss(z, as_classes).item(), rel=1e-6)


@pytest.mark.parametrize("temperature", [0.1, 0.5])
def test_supcon_matches_the_paper(temperature):
    g = torch.Generator().manual_seed(3)
    z = torch.randn(10, 5, generator=g)
    labels = torch.tensor([0, 1, 1, 2, 0, 0, 1, 1, 2, 3])  # class 3 has no positive: left out
    ours = supcon(temperature=temperature)(z, labels)
    assert ours.item() == pytest.approx(supcon_by_loop(z, labels.tolist(), temperature), rel=1e-5)


def test_supcon_with_distinct_labels_is_simclr_style_and_order_invariant():
    g = torch.Generator().manual_seed(4)
    z, labels = torch.randn(8, 5, generator=g), torch.tensor([0, 1, 2, 3] * 2)
    perm = torch.randperm(8, generator=g)
    loss = supcon(temperature=0.2)
    assert loss(z, labels).item() == pytest.approx(loss(z[perm], labels[perm]).item(), rel=1e-6)


@pytest.mark.parametrize("loss", [triplet(), supcon()])
def test_bad_shapes_are_refused(loss):
    with pytest.raises(ValueError, match="batch, dim"):
        loss(torch.randn(4, 2, 3), torch.zeros(4))
    with pytest.raises(ValueError, match="labels of shape"):
        loss(torch.randn(4, 3), torch.zeros(5))
