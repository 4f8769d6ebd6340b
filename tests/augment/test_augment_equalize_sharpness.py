"""The SimCLR-thesis transforms: histogram equalisation and sharpness, batched, against
torchvision and OpenCV on single images; per-sample randomness; p=0 and p=1; the preset and its
place in the aug_ablation study."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from hydra.utils import instantiate
from omegaconf import OmegaConf

from medssl.augment.base import uniform
from medssl.augment.equalize import Equalize, equalize
from medssl.augment.pipeline import ViewPipeline
from medssl.augment.sharpness import Sharpness
from tests.conftest import CONF, compose_config

PRESET = "simclr_equalize_sharpness"


def smooth_u8(b: int, channels: int = 1, size: int = 28, seed: int = 0) -> torch.Tensor:
    """Smooth uint8 images of mid-range contrast (about 100 grey levels each)."""
    g = torch.Generator().manual_seed(seed)
    coarse = 0.2 + 0.5 * torch.rand(b, channels, 7, 7, generator=g)
    x = torch.nn.functional.interpolate(coarse, size=size, mode="bilinear", align_corners=False)
    return (x * 255).round().to(torch.uint8)


def to_u8(x: torch.Tensor) -> torch.Tensor:
    return (x * 255).round().to(torch.uint8)


def test_equalize_is_torchvisions_on_every_single_image():
    # Exact (0 levels): the same PIL mapping. A low-contrast image (40 levels), a two-level one
    # (stretched to black and white) and a constant one (left as it is) ride in one batch.
    rng = np.random.default_rng(0)
    low = torch.from_numpy(rng.integers(100, 140, (1, 1, 28, 28), dtype=np.uint8))
    two = torch.full((1, 1, 28, 28), 60, dtype=torch.uint8)
    two[..., :9] = 200
    flat = torch.full((1, 1, 28, 28), 77, dtype=torch.uint8)
    batch = torch.cat([smooth_u8(5), low, two, flat])
    ours = to_u8(equalize(batch.float() / 255))
    for image, got in zip(batch, ours, strict=True):
        assert torch.equal(got, TF.equalize(image))
    assert ours[-2].unique().tolist() == [0, 255] and torch.equal(ours[-1], batch[-1])
    assert ours[:6].amin(dim=(1, 2, 3)).eq(0).all() and ours[:6].amax(dim=(1, 2, 3)).eq(255).all()


def test_equalize_agrees_with_opencv_within_its_different_stretch():
    """OpenCV maps the darkest occupied level to 0 and counts a level's own pixels, PIL the
    pixels below it: on images of ~100 levels the two differ by at most 8 of 255 levels per
    pixel and 2.5 on average, and order the pixels identically."""
    batch = smooth_u8(8, seed=1)
    ours = to_u8(equalize(batch.float() / 255)).numpy().astype(int)
    for image, got in zip(batch.numpy(), ours, strict=True):
        expected = cv2.equalizeHist(image[0]).astype(int)
        diff = np.abs(got[0] - expected)
        assert diff.max() <= 8 and diff.mean() <= 2.5
        order = np.argsort(image[0].ravel(), kind="stable")
        assert (np.diff(got[0].ravel()[order]) >= 0).all()  # a monotone map of the levels
    assert np.abs(ours - batch.numpy()).mean() > 20  # and it really changes the images


def test_colour_equalize_is_luminance_equalisation_with_chroma_kept():
    rgb = smooth_u8(4, channels=3, seed=2)
    ours = to_u8(equalize(rgb.float() / 255)).numpy().astype(int)
    for image, got in zip(rgb.numpy(), ours, strict=True):
        ycrcb = cv2.cvtColor(np.ascontiguousarray(image.transpose(1, 2, 0)), cv2.COLOR_RGB2YCrCb)
        ycrcb[..., 0] = TF.equalize(torch.from_numpy(ycrcb[..., 0].copy())[None]).numpy()[0]
        expected = cv2.cvtColor(ycrcb, cv2.COLOR_YCrCb2RGB).transpose(2, 0, 1).astype(int)
        # OpenCV's round trip stores Cr and Cb as uint8, and its fixed-point luma is one level
        # off for a few pixels, which then take a neighbouring entry of the map: within 2
        # levels for 99 % of the values, 0.5 on average.
        diff = np.abs(got - expected)
        assert (diff <= 2).mean() >= 0.99 and diff.mean() <= 0.5
    gray = smooth_u8(3, seed=3)
    torch.testing.assert_close(
        equalize(gray.expand(-1, 3, -1, -1).float() / 255),
        equalize(gray.float() / 255).expand(-1, 3, -1, -1),
        atol=1e-6,
        rtol=0,
    )


@pytest.mark.parametrize("factor", [0.0, 0.5, 1.0, 4.0, 10.0])
@pytest.mark.parametrize("channels", [1, 3])
def test_sharpness_is_torchvisions_adjust_sharpness(factor, channels):
    x = torch.rand(3, channels, 17, 23, generator=torch.Generator().manual_seed(4))
    out = Sharpness(factor=(factor, factor), p=1.0)(x, torch.Generator())
    for image, got in zip(x, out, strict=True):
        # float32 arithmetic in another order: within 1e-6.
        torch.testing.assert_close(got, TF.adjust_sharpness(image, factor), atol=1e-6, rtol=0)
    if factor == 1.0:
        assert torch.equal(out, x)


def test_sharpness_draws_one_factor_per_sample():
    x = (smooth_u8(1).float() / 255).repeat(8, 1, 1, 1)
    out = Sharpness(factor=(1.0, 10.0), p=1.0)(x, torch.Generator().manual_seed(5))
    # p=1 draws nothing but the factors, so the same stream gives them back.
    factors = uniform(8, 1.0, 10.0, torch.Generator().manual_seed(5), "cpu")
    assert len(set(factors.tolist())) == 8
    for image, got, f in zip(x, out, factors.tolist(), strict=True):
        torch.testing.assert_close(got, TF.adjust_sharpness(image, f), atol=1e-5, rtol=0)
    assert len({tuple(v.flatten().tolist()) for v in out}) == 8


def test_equalize_coin_is_per_sample_and_p_zero_one_are_exact():
    x = (smooth_u8(1).float() / 255).repeat(64, 1, 1, 1)
    done = equalize(x)
    assert torch.equal(Equalize(p=0.0)(x, torch.Generator()), x)
    assert torch.equal(Equalize(p=1.0)(x, torch.Generator()), done)
    chosen = []
    for seed in (0, 1):
        out = Equalize(p=0.5)(x, torch.Generator().manual_seed(seed))
        is_done = (out == done).flatten(1).all(1)
        assert (is_done | (out == x).flatten(1).all(1)).all()  # each sample: one or the other
        assert 16 <= int(is_done.sum()) <= 48
        chosen.append(is_done)
    assert not torch.equal(chosen[0], chosen[1])


def test_sharpness_p_zero_is_the_input_and_bad_factor_is_refused():
    x = torch.rand(4, 1, 12, 12)
    assert torch.equal(Sharpness(factor=(2.0, 9.0), p=0.0)(x, torch.Generator()), x)
    with pytest.raises(ValueError, match="factor"):
        Sharpness(factor=(3.0, 1.0), p=1.0)


def test_preset_is_simclr_plus_both_and_the_ablation_sweeps_it():
    simclr = OmegaConf.to_container(compose_config(["augmentation=simclr"]).augmentation)
    preset = OmegaConf.to_container(compose_config([f"augmentation={PRESET}"]).augmentation)
    assert {k: v for k, v in preset.items() if k not in ("equalize", "sharpness")} == simclr
    assert list(preset)[-2:] == ["equalize", "sharpness"]  # after the blur, as in the thesis
    pipeline = instantiate(preset)
    assert isinstance(pipeline, ViewPipeline)
    u8 = smooth_u8(4, channels=3)
    views = pipeline(u8, torch.Generator().manual_seed(0))
    assert len(views) == 2 and views[0].shape == u8.shape and not torch.equal(views[0], views[1])
    swept = OmegaConf.load(CONF / "experiment" / "aug_ablation.yaml").hydra.sweeper.params
    assert f"{PRESET}_recipe" in swept.ablation.split(",")
    cfg = compose_config(["+experiment=aug_ablation", f"ablation={PRESET}_recipe"])
    assert OmegaConf.to_container(cfg.augmentation) == preset
