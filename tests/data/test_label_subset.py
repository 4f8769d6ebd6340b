"""The labelled subset: stratified, nested across fractions, deterministic, clear on bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medssl import MedsslError
from medssl.data.label_subset import check_label_frac, labelled_subset

LABELS = torch.tensor([0] * 300 + [1] * 100 + [2] * 20)


@pytest.mark.parametrize("frac", [0.05, 0.1, 0.5])
def test_subset_is_stratified(frac):
    idx = labelled_subset(LABELS, frac, label_seed=0)
    counts = np.bincount(LABELS[idx].numpy(), minlength=3)
    np.testing.assert_array_equal(counts, [round(frac * 300), round(frac * 100), round(frac * 20)])


def test_subsets_are_nested_across_fractions():
    fracs = [0.05, 0.1, 0.25, 0.5, 1.0]
    subsets = [set(labelled_subset(LABELS, f, label_seed=3).tolist()) for f in fracs]
    for small, large in zip(subsets, subsets[1:]):
        assert small < large


def test_subset_is_deterministic_and_depends_on_the_seed():
    a = labelled_subset(LABELS, 0.1, label_seed=1)
    b = labelled_subset(LABELS, 0.1, label_seed=1)
    c = labelled_subset(LABELS, 0.1, label_seed=2)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_full_fraction_is_every_image():
    assert torch.equal(labelled_subset(LABELS, 1.0, label_seed=0), torch.arange(len(LABELS)))


def test_indices_are_unique_and_in_range():
    idx = labelled_subset(LABELS, 0.3, label_seed=0)
    assert len(set(idx.tolist())) == len(idx)
    assert idx.min() >= 0 and idx.max() < len(LABELS)


@pytest.mark.parametrize("bad", [0, 0.0, -0.1, 1.5, "half", None, True])
def test_label_frac_outside_unit_interval_is_refused(bad):
    with pytest.raises(MedsslError, match="label_frac"):
        check_label_frac(bad)


def test_too_small_fraction_names_the_class_and_smallest_valid_value():
    with pytest.raises(MedsslError) as error:
        labelled_subset(LABELS, 0.01, label_seed=0, class_names=["a", "b", "rare"])
    message = str(error.value)
    assert "'rare'" in message and "0.025" in message  # 0.5 / 20 images
    # The suggested value really works.
    idx = labelled_subset(LABELS, 0.025, label_seed=0)
    assert set(LABELS[idx].tolist()) == {0, 1, 2}


def test_multilabel_subset_keeps_a_positive_of_every_label():
    rng = np.random.default_rng(0)
    y = torch.from_numpy((rng.random((500, 4)) < [0.5, 0.3, 0.2, 0.1]).astype(np.int64))
    idx = labelled_subset(y, 0.1, label_seed=0)
    assert len(idx) == 50
    assert (y[idx].sum(0) > 0).all()
    assert set(idx.tolist()) < set(labelled_subset(y, 0.2, label_seed=0).tolist())


def test_multilabel_subset_without_a_positive_is_refused():
    y = torch.zeros(100, 2, dtype=torch.int64)
    y[:, 0] = 1
    y[99, 1] = 1
    with pytest.raises(MedsslError, match="without a positive"):
        labelled_subset(y, 0.05, label_seed=0)


def test_real_subset_is_disjoint_from_val_and_test(medmnist_root):
    from medssl.data.medmnist_source import load_medmnist

    data = load_medmnist(
        "breastmnist",
        28,
        str(medmnist_root),
        download=False,
        positive_class=0,
        references=[],
        store_dir=None,
    )
    idx = labelled_subset(data.train.labels, 0.1, label_seed=0)
    train_bytes = {data.train.images[i].numpy().tobytes() for i in idx.tolist()}
    others = {img.numpy().tobytes() for img in torch.cat([data.val.images, data.test.images])}
    assert len(idx) == 55
    assert not train_bytes & others
