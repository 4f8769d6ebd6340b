"""Every batch augmentation: shape, dtype and range kept, identity at zero strength,
reproducible under a seed, different between two views; presets compose and run."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from medssl.augment.blur import GaussianBlur
from medssl.augment.color import ColorJitter, Gamma, Grayscale, Solarize, rotate_hue
from medssl.augment.geometric import RandomCrop, RandomResizedCrop, resample, resample_axis_aligned
from medssl.augment.noise import GaussianNoise, RandomErasing
from medssl.augment.pipeline import ViewPipeline
from medssl.augment.retinal import CLAHE, BackgroundRemoval, Jigsaw
from medssl.data.model_input import to_model_input
from tests.conftest import compose_config, plain_crop

# name -> (class, kwargs at full strength with p=1, kwargs at zero strength)
TRANSFORMS = {
    "crop": (
        RandomResizedCrop,
        dict(
            scale=(0.2, 1.0),
            ratio=(3 / 4, 4 / 3),
            hflip_p=0.5,
            vflip_p=0.5,
            degrees=30,
            translate=0.1,
            shear=10,
            padding_mode="border",
        ),
        dict(
            scale=(1.0, 1.0),
            ratio=(1.0, 1.0),
            hflip_p=0.0,
            vflip_p=0.0,
            degrees=0.0,
            translate=0.0,
            shear=0.0,
            padding_mode="border",
        ),
    ),
    "random_crop": (RandomCrop, dict(crop_frac=0.7, min_size=16), dict(crop_frac=1.0, min_size=16)),
    "jitter": (
        ColorJitter,
        dict(brightness=0.8, contrast=0.8, saturation=0.8, hue=0.2),
        dict(brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0),
    ),
    "gamma": (Gamma, dict(gamma=(0.5, 2.0)), dict(gamma=(1.0, 1.0))),
    "blur": (
        GaussianBlur,
        dict(sigma=(0.5, 2.0), kernel_frac=0.2),
        dict(sigma=(0.0, 0.0), kernel_frac=0.2),
    ),
    "noise": (GaussianNoise, dict(std=(0.05, 0.1)), dict(std=(0.0, 0.0))),
    "solarize": (Solarize, dict(threshold=0.5), dict(threshold=1.0)),
    "erasing": (RandomErasing, dict(scale=(0.1, 0.3)), dict(scale=(0.0, 0.0))),
    "background": (BackgroundRemoval, dict(threshold=0.3), dict(threshold=0.0)),
    "jigsaw": (Jigsaw, dict(grids=(8, 4, 2)), dict(grids=(1,))),
}


def images(channels: int, b: int = 6, size: int = 28) -> torch.Tensor:
    """Smooth random images with structure (so crops, flips and tiles change them)."""
    g = torch.Generator().manual_seed(channels)
    coarse = torch.rand(b, channels, 7, 7, generator=g)
    return torch.nn.functional.interpolate(coarse, size=size, mode="bilinear", align_corners=False)


def run(transform, x, seed):
    return transform(x, torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("name", TRANSFORMS)
def test_keeps_shape_dtype_and_range(name, channels):
    cls, strong, _ = TRANSFORMS[name]
    x = images(channels)
    y = run(cls(**strong, p=1.0), x, 0)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert y.min() >= 0.0 and y.max() <= 1.0
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("name", TRANSFORMS)
def test_identity_at_zero_strength(name, channels):
    cls, _, zero = TRANSFORMS[name]
    x = images(channels)
    torch.testing.assert_close(run(cls(**zero, p=1.0), x, 0), x, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", TRANSFORMS)
def test_identity_at_probability_zero(name):
    cls, strong, _ = TRANSFORMS[name]
    x = images(3)
    assert torch.equal(run(cls(**strong, p=0.0), x, 0), x)


@pytest.mark.parametrize("name", TRANSFORMS)
def test_reproducible_under_a_seed(name):
    cls, strong, _ = TRANSFORMS[name]
    x = images(3)
    transform = cls(**strong, p=0.7)
    assert torch.equal(run(transform, x, 5), run(transform, x, 5))
    assert not torch.equal(run(transform, x, 5), run(transform, x, 6))


@pytest.mark.parametrize("name", TRANSFORMS)
def test_two_views_differ(name):
    cls, strong, _ = TRANSFORMS[name]
    x = images(3, b=16)
    # p=0.5: solarize and background removal are deterministic; their coin is the randomness.
    transform = cls(**strong, p=0.5)
    g = torch.Generator().manual_seed(0)
    first, second = transform(x, g), transform(x, g)
    assert not torch.equal(first, x)
    assert not torch.equal(first, second)


def test_per_sample_randomness():
    """One batch must not share a single crop: each sample draws its own."""
    x = images(1, b=1).repeat(8, 1, 1, 1)
    crop = plain_crop(scale=(0.2, 1.0), hflip_p=0.5, p=1.0)
    y = run(crop, x, 0)
    assert len({tuple(v.flatten()[:50].tolist()) for v in y}) == 8


def test_crop_matches_manual_crop():
    """Scale 1/4 of the area at aspect 1 with no shift is the centre half, upsampled."""
    x = images(1, b=1, size=8)
    crop = plain_crop(scale=(0.25, 0.25), ratio=(1.0, 1.0), hflip_p=0.0, p=1.0)
    theta = crop.matrices(1, torch.Generator().manual_seed(0), "cpu")
    assert torch.allclose(theta[0, :, :2], torch.eye(2) * 0.5, atol=1e-6)
    flipped = plain_crop(scale=(1.0, 1.0), ratio=(1.0, 1.0), hflip_p=1.0, vflip_p=1.0, p=1.0)
    torch.testing.assert_close(run(flipped, x, 0), x.flip(-1).flip(-2), atol=1e-5, rtol=0)


def test_rotation_matrices_and_quarter_turn_resampling():
    rot = plain_crop(scale=(1.0, 1.0), ratio=(1.0, 1.0), hflip_p=0.0, degrees=90, p=1.0)
    theta = rot.matrices(256, torch.Generator().manual_seed(0), "cpu")
    linear = theta[:, :, :2]
    torch.testing.assert_close(
        linear @ linear.transpose(1, 2), torch.eye(2).expand(256, 2, 2), atol=1e-5, rtol=0
    )
    torch.testing.assert_close(torch.linalg.det(linear), torch.ones(256), atol=1e-5, rtol=0)
    angles = torch.atan2(linear[:, 1, 0], linear[:, 0, 0])
    assert angles.abs().max() <= np.pi / 2 + 1e-6 and angles.min() < -1.2 and angles.max() > 1.2
    # A +90 degree matrix resamples the image as an exact quarter turn.
    x = images(1, b=1, size=8)
    quarter = torch.tensor([[[0.0, -1.0, 0.0], [1.0, 0.0, 0.0]]])
    torch.testing.assert_close(
        resample(x, quarter, None, "zeros"), torch.rot90(x, k=1, dims=(-2, -1)), atol=1e-5, rtol=0
    )


def test_random_crop_falls_back_to_centre_for_small_images():
    x = images(1, b=4, size=16)
    small = RandomCrop(crop_frac=0.5, min_size=32, p=1.0)
    assert torch.equal(run(small, x, 0), run(small, x, 1))  # no randomness below min_size
    big = RandomCrop(crop_frac=0.5, min_size=8, p=1.0)
    assert not torch.equal(run(big, x, 0), run(big, x, 1))


def test_solarize_and_grayscale_formulas():
    x = images(3)
    torch.testing.assert_close(run(Solarize(0.5, p=1.0), x, 0), torch.where(x > 0.5, 1 - x, x))
    gray = run(Grayscale(p=1.0), x, 0)
    expected = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
    for c in range(3):
        torch.testing.assert_close(gray[:, c], expected)
    one = images(1)
    assert torch.equal(run(Grayscale(p=1.0), one, 0), one)


def test_hue_rotation_keeps_luma_and_full_turn_is_identity():
    x = images(3)
    turned = rotate_hue(x, torch.full((len(x),), 0.3))
    torch.testing.assert_close(
        turned[:, 0] * 0.299 + turned[:, 1] * 0.587 + turned[:, 2] * 0.114,
        x[:, 0] * 0.299 + x[:, 1] * 0.587 + x[:, 2] * 0.114,
        atol=1e-5,
        rtol=0,
    )
    torch.testing.assert_close(rotate_hue(x, torch.ones(len(x))), x, atol=1e-5, rtol=0)


def test_colour_jitter_leaves_hue_of_grayscale_alone():
    x = images(1)
    y = run(ColorJitter(brightness=0.0, contrast=0.0, saturation=0.9, hue=0.5, p=1.0), x, 0)
    assert torch.equal(x, y)


@pytest.mark.parametrize("taps", [5, 13])  # shifted sums, then the depthwise convolution
@pytest.mark.parametrize("channels", [1, 3])
def test_blur_matches_opencv(taps, channels):
    x = images(channels, b=2, size=32)
    sigma = 1.5
    blur = GaussianBlur(sigma=(sigma, sigma), kernel_frac=taps / 32, p=1.0)
    assert blur.kernel_size(32) == taps
    weights = np.exp(-((np.arange(taps) - taps // 2) ** 2) / (2 * sigma**2))
    weights /= weights.sum()
    out = run(blur, x, 0).numpy()
    for i in range(2):
        for c in range(channels):
            expected = cv2.sepFilter2D(
                x[i, c].numpy(), -1, weights, weights, borderType=cv2.BORDER_REFLECT_101
            )
            np.testing.assert_allclose(out[i, c], expected, atol=1e-5)


def test_jigsaw_permutes_tiles():
    x = images(1, b=3, size=8)
    y = run(Jigsaw(grids=(2,), p=1.0), x, 0)
    for a, b in zip(x, y, strict=True):
        tiles_a = sorted(
            t.sum().item() for t in a[0].unfold(0, 4, 4).unfold(1, 4, 4).reshape(4, 16)
        )
        tiles_b = sorted(
            t.sum().item() for t in b[0].unfold(0, 4, 4).unfold(1, 4, 4).reshape(4, 16)
        )
        assert tiles_a == pytest.approx(tiles_b)
    # 28 px cut 8 x 8: 3 px tiles, the 4 px border stays put.
    z = run(Jigsaw(grids=(8,), p=1.0), images(1), 0)
    assert torch.equal(z[..., 24:, :], images(1)[..., 24:, :])


def test_erasing_fills_a_rectangle():
    x = images(1, b=4)
    y = run(RandomErasing(scale=(0.1, 0.2), value=0.0, p=1.0), x, 0)
    for a, b in zip(x, y, strict=True):
        changed = (a != b)[0]
        rows, cols = changed.any(1).nonzero(), changed.any(0).nonzero()
        assert (b[0, rows.min() : rows.max() + 1, cols.min() : cols.max() + 1] == 0).all()


@pytest.mark.parametrize("channels", [1, 3])
def test_clahe_matches_opencv(channels):
    rng = np.random.default_rng(0)
    image = cv2.GaussianBlur(rng.integers(0, 256, (64, 64, channels), dtype=np.uint8), (7, 7), 2)
    image = image.reshape(64, 64, channels)
    stored = torch.from_numpy(image.transpose(2, 0, 1).copy())[None]
    out = CLAHE(clip_limit=3.0, tile_grid=4, enabled=True)(stored)[0].numpy()
    clahe = cv2.createCLAHE(clipLimit=3.0, tileGridSize=(4, 4))
    if channels == 1:
        expected = clahe.apply(image[..., 0])[None]
    else:
        lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB)
        lab[..., 0] = clahe.apply(lab[..., 0])
        expected = cv2.cvtColor(lab, cv2.COLOR_LAB2RGB).transpose(2, 0, 1)
    np.testing.assert_array_equal(out, expected)
    assert not np.array_equal(out, image.transpose(2, 0, 1))
    assert torch.equal(CLAHE(clip_limit=3.0, tile_grid=4, enabled=False)(stored), stored)


def test_pipeline_views_seeded_and_distinct():
    crop = plain_crop(scale=(0.08, 1.0), hflip_p=0.5, p=1.0)
    jitter = ColorJitter(brightness=0.4, contrast=0.4, saturation=0.2, hue=0.1, p=0.8)
    clahe = CLAHE(clip_limit=2.0, tile_grid=8, enabled=True)
    pipe = ViewPipeline(n_views=2, cpu_threads=None, crop=crop, jitter=jitter, clahe=clahe)
    assert list(pipe.stored) == ["clahe"] and "clahe" not in pipe.transforms
    u8 = (images(3) * 255).to(torch.uint8)
    a = pipe(u8, torch.Generator().manual_seed(0))
    b = pipe(u8, torch.Generator().manual_seed(0))
    assert all(torch.equal(p, q) for p, q in zip(a, b, strict=True))
    assert not torch.equal(a[0], a[1])
    assert a[0].min() >= -1 and a[0].max() <= 1
    none = ViewPipeline(n_views=2, cpu_threads=None)(u8, torch.Generator())
    torch.testing.assert_close(none[0], to_model_input(u8))


def test_per_view_probabilities_make_byol_views_asymmetric():
    blur = GaussianBlur(sigma=(2.0, 2.0), kernel_frac=0.1, p=[1.0, 0.0])
    pipe = ViewPipeline(n_views=2, cpu_threads=None, blur=blur)
    u8 = (images(1) * 255).to(torch.uint8)
    first, second = pipe(u8, torch.Generator().manual_seed(0))
    assert not torch.allclose(first, to_model_input(u8))
    torch.testing.assert_close(second, to_model_input(u8))
    with pytest.raises(ValueError, match="probability"):
        GaussianBlur(sigma=(0.1, 2.0), kernel_frac=0.1, p=[1.0, 1.5])


PRESETS = ["simclr", "byol", "medical", "retina", "finetune", "none"]


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("channels", [1, 3])
def test_presets_compose_and_run(preset, channels):
    cfg = compose_config([f"augmentation={preset}"])
    pipe = instantiate(cfg.augmentation)
    u8 = pipe.prepare_images((images(channels, b=4) * 255).to(torch.uint8))
    views = pipe(u8, torch.Generator().manual_seed(0))
    assert len(views) == cfg.augmentation.n_views
    assert all(v.shape == u8.shape and v.dtype == torch.float32 for v in views)


def test_ablation_is_an_override():
    cfg = compose_config(
        ["augmentation=simclr", "augmentation.blur.p=0", "augmentation.jitter=null"]
    )
    pipe = instantiate(cfg.augmentation)
    assert pipe.transforms["blur"].probability(0) == 0.0 and "jitter" not in pipe.transforms


@pytest.mark.parametrize("padding_mode", ["zeros", "border"])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", [None, 20, 40])
def test_separable_resampling_matches_grid_sample(padding_mode, channels, size):
    """The axis-aligned fast path is bilinear `grid_sample` by another route, edges included."""
    x = torch.rand(16, channels, 28, 28, generator=torch.Generator().manual_seed(1))
    crop = plain_crop(scale=(0.05, 1.0), hflip_p=0.5, vflip_p=0.5, translate=0.3, p=1.0)
    theta = crop.matrices(16, torch.Generator().manual_seed(2), "cpu")
    torch.testing.assert_close(
        resample_axis_aligned(x, theta, size, padding_mode),
        resample(x, theta, size, padding_mode),
        atol=1e-5,
        rtol=0,
    )


def test_views_use_cpu_threads_and_restore_the_setting():
    seen = []

    class Spy(torch.nn.Module):
        def forward(self, x, generator, n_views):
            seen.append(torch.get_num_threads())
            return x

    original = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        u8 = torch.zeros(2, 1, 8, 8, dtype=torch.uint8)
        ViewPipeline(n_views=2, cpu_threads=1, spy=Spy())(u8, torch.Generator())
        ViewPipeline(n_views=1, cpu_threads=None, spy=Spy())(u8, torch.Generator())
        assert seen == [1, 2] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(original)
