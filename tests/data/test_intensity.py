"""intensity.py: each mapping against a hand computation, on uint8 and uint16 batches."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from medssl.data.intensity import KINDS, as_torch
from medssl.errors import MedsslError
from tests.data.dataset_options import intensity

DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=[
            pytest.mark.gpu,
            pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
        ],
    ),
]


def batch(values, dtype=torch.uint16) -> torch.Tensor:
    """`(B, C, H, W)` from nested lists, through numpy as the image store hands them over."""
    numpy_dtype = np.uint8 if dtype == torch.uint8 else np.uint16
    return as_torch(np.array(values, dtype=numpy_dtype))


def assert_close(out: torch.Tensor, expected) -> None:
    """float32 against a float64 hand computation. (`torch.testing.assert_close` would cost a
    second of imports on first use.)"""
    assert out.dtype == torch.float32
    np.testing.assert_allclose(out.cpu().numpy(), np.asarray(expected), rtol=1e-6, atol=1e-7)


def test_range_on_uint8_is_exactly_the_old_division():
    x = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 16, 16)
    out = intensity()(x)
    assert out.dtype == torch.float32
    assert torch.equal(out, x.float() / 255.0)


def test_range_on_uint16_divides_by_65535():
    x = batch([[[[0, 257, 4095, 65535]]]])
    expected = [0, 257 / 65535, 4095 / 65535, 1.0]
    assert_close(intensity(kind="range")(x).flatten(), expected)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.uint16])
def test_minmax_is_per_image_over_channels_and_pixels(dtype):
    x = batch([[[[10, 20]], [[30, 50]]], [[[7, 7]], [[7, 7]]]], dtype)
    out = intensity(kind="minmax")(x)
    assert_close(out, [[[[0, 0.25]], [[0.5, 1]]], [[[0, 0]], [[0, 0]]]])


def test_percentile_clips_then_stretches():
    # One image holding 0..100: its 10th and 90th percentiles are 10 and 90.
    values = np.arange(101).reshape(1, 1, 1, 101)
    out = intensity(kind="percentile", low=10, high=90)(as_torch(values.astype(np.uint8)))
    expected = np.clip((values - 10) / 80, 0, 1)
    assert_close(out, expected)


@pytest.mark.parametrize("low, high", [(0.5, 99.5), (2.0, 98.0), (0.0, 100.0), (13.3, 71.1)])
def test_percentile_matches_numpy_per_image(low, high):
    values = np.random.default_rng(0).integers(0, 65536, (3, 2, 9, 7)).astype(np.uint16)
    values[2] = 1234  # a constant image
    out = intensity(kind="percentile", low=low, high=high)(as_torch(values))
    for image, got in zip(values.astype(np.float64), out.numpy()):
        lo, hi = np.percentile(image, [low, high])
        want = np.zeros_like(image) if hi == lo else (np.clip(image, lo, hi) - lo) / (hi - lo)
        np.testing.assert_allclose(got, want, atol=1e-6)


def test_window_is_dicom_linear_in_stored_units():
    x = batch([[[[0, 74, 75, 100, 124, 125, 4000]]]])
    out = intensity(kind="window", center=100, width=51)(x).flatten()
    # y = (x - 99.5) / 50 + 0.5, clipped.
    expected = [0, 0, 0.01, 0.51, 0.99, 1, 1]
    assert_close(out, expected)
    step = intensity(kind="window", center=100, width=1)(x).flatten()
    assert step.tolist() == [0, 0, 0, 1, 1, 1, 1]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_every_kind_stays_on_the_device_in_unit_range(device, kind, dtype):
    values = np.random.default_rng(1).integers(0, np.iinfo(dtype).max + 1, (4, 3, 16, 16))
    x = as_torch(values.astype(dtype)).to(device)
    out = intensity(kind=kind, center=120, width=200)(x)
    assert out.device == x.device and out.dtype == torch.float32 and out.shape == x.shape
    assert out.min() >= 0 and out.max() <= 1


def test_as_torch_copies_a_read_only_memmap_slice(tmp_path):
    path = tmp_path / "store.npy"
    store = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint16, shape=(5, 1, 4, 4))
    store[:] = np.arange(5 * 16).reshape(5, 1, 4, 4) * 800
    store.flush()
    view = np.load(path, mmap_mode="r")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch warns about a tensor over read-only memory
        tensor = as_torch(view[1:4])
    assert tensor.dtype == torch.uint16 and tuple(tensor.shape) == (3, 1, 4, 4)
    assert np.array_equal(tensor.numpy(), view[1:4])
    tensor[0] = 0  # its own memory: the store is untouched
    assert view[1].max() > 0
    assert as_torch(np.zeros((1, 1, 2, 2), np.uint8)).dtype == torch.uint8


def test_bad_configs_name_their_key():
    with pytest.raises(MedsslError, match="dataset.intensity.kind") as error:
        intensity(kind="zscore")
    assert all(kind in str(error.value) for kind in KINDS)
    for width in (None, 0, -3, 0.5):
        with pytest.raises(MedsslError, match="dataset.intensity.width"):
            intensity(kind="window", center=40, width=width)
    with pytest.raises(MedsslError, match="dataset.intensity.center"):
        intensity(kind="window", width=400)
    with pytest.raises(MedsslError, match="dataset.intensity.low"):
        intensity(kind="percentile", low=60, high=40)
    with pytest.raises(MedsslError, match="dataset.intensity.low"):
        intensity(kind="percentile", low=-1, high=99)


def test_bad_inputs_say_what_was_expected():
    with pytest.raises(ValueError, match="uint8 or uint16"):
        intensity()(torch.zeros(1, 1, 2, 2))
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        intensity()(torch.zeros(1, 2, 2, dtype=torch.uint8))
    with pytest.raises(ValueError, match="uint8 or uint16"):
        as_torch(np.zeros((2, 2), np.float32))
