"""Loading genuine MedMNIST files, and the one-sentence errors for missing or corrupt ones."""

from __future__ import annotations

import time

import pytest
import torch

from medssl import MedsslError
from medssl.data.medmnist_source import load_medmnist


def test_breastmnist_loads_as_uint8_tensors(medmnist_root):
    data = load_medmnist(
        "breastmnist",
        28,
        root=str(medmnist_root),
        download=False,
        positive_class=0,
        references=[],
        store_dir=None,
    )
    assert (len(data.train), len(data.val), len(data.test)) == (546, 78, 156)
    assert data.train.images.shape == (546, 1, 28, 28) and data.train.images.dtype == torch.uint8
    assert data.train.labels.shape == (546,) and set(data.train.labels.tolist()) == {0, 1}
    assert data.task == "binary" and data.num_classes == 2


def test_size_64_is_a_separate_file(medmnist_root):
    data = load_medmnist(
        "breastmnist",
        64,
        root=str(medmnist_root),
        download=False,
        positive_class=0,
        references=[],
        store_dir=None,
    )
    assert data.train.images.shape == (546, 1, 64, 64)


def test_missing_file_names_the_file_and_the_folder(tmp_path):
    with pytest.raises(MedsslError) as error:
        load_medmnist(
            "pneumoniamnist",
            28,
            root=str(tmp_path),
            download=False,
            positive_class=1,
            references=[],
            store_dir=None,
        )
    message = str(error.value)
    assert "pneumoniamnist.npz" in message and str(tmp_path) in message
    assert "\n" not in message


def test_missing_file_without_network_fails_with_the_same_sentence(tmp_path):
    started = time.perf_counter()
    with pytest.raises(MedsslError, match=r"pneumoniamnist_64\.npz is not in"):
        load_medmnist(
            "pneumoniamnist",
            64,
            root=str(tmp_path),
            download=True,
            positive_class=1,
            references=[],
            store_dir=None,
        )
    assert not (tmp_path / "pneumoniamnist_64.npz").exists()
    assert time.perf_counter() - started < 120


def test_corrupt_file_is_reported_as_corrupt(tmp_path, medmnist_root):
    original = (medmnist_root / "breastmnist.npz").read_bytes()
    (tmp_path / "breastmnist.npz").write_bytes(original[: len(original) // 2])
    with pytest.raises(MedsslError, match="corrupt"):
        load_medmnist(
            "breastmnist",
            28,
            root=str(tmp_path),
            download=False,
            positive_class=0,
            references=[],
            store_dir=None,
        )


def test_unknown_dataset_and_size_are_refused(tmp_path):
    with pytest.raises(MedsslError, match="unknown MedMNIST dataset"):
        load_medmnist(
            "catmnist",
            28,
            str(tmp_path),
            download=False,
            positive_class=None,
            references=[],
            store_dir=None,
        )
    with pytest.raises(MedsslError, match="sizes"):
        load_medmnist(
            "breastmnist",
            32,
            str(tmp_path),
            download=False,
            positive_class=0,
            references=[],
            store_dir=None,
        )
