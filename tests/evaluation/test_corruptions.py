"""Test-image corruptions: shapes, identity at severity 0, strength growing with severity, and
JPEG quantisation against libjpeg (through Pillow)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from PIL import Image

from medssl import MedsslError
from medssl.evaluation.corruptions import ContrastLoss, GaussianNoise
from medssl.evaluation.jpeg import jpeg_quantise
from medssl.evaluation.robustness import Robustness
from tests.conftest import compose_config


@pytest.fixture(scope="module")
def robustness() -> Robustness:
    """The corruptions as the real config builds them."""
    return instantiate(
        compose_config(["eval.analyses.robustness.enabled=true"]).eval.analyses.robustness
    )


def textured(channels: int, n: int = 6, size: int = 28, seed: int = 0) -> torch.Tensor:
    """Mid-grey images with smooth structure and fine texture: every corruption has something
    to remove and no pixel starts clipped."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    base = 128 + 50 * np.sin(6 * xx + rng.uniform(0, 6, (n, channels, 1, 1))) * np.cos(4 * yy)
    images = base + rng.normal(0, 12, (n, channels, size, size))
    return torch.as_tensor(np.clip(images, 30, 225).round(), dtype=torch.uint8)


@pytest.mark.parametrize("channels", [1, 3])
def test_every_corruption_keeps_shape_and_dtype_is_identity_at_0_and_grows_with_severity(
    channels, robustness
):
    assert set(robustness.corruptions) == {
        "noise",
        "blur",
        "contrast",
        "brightness",
        "jpeg",
        "resolution",
    }
    images = textured(channels)
    for name, corruption in robustness.corruptions.items():
        assert corruption(images, 0) is images, name
        distances = []
        for severity in range(1, corruption.max_severity + 1):
            out = robustness.corrupted(images, name, severity, batch_size=4)
            assert out.shape == images.shape and out.dtype == torch.uint8, name
            distances.append((out.float() - images.float()).abs().mean().item())
        # Each severity moves the images further from the clean ones than the one before.
        assert all(b > a for a, b in zip(distances, distances[1:])), (name, distances)
        assert distances[0] > 0.5, (name, distances)


def test_noise_is_seeded_and_the_same_draw_at_every_severity(robustness):
    images = textured(1)
    once = robustness.corrupted(images, "noise", 3, batch_size=4)
    torch.testing.assert_close(once, robustness.corrupted(images, "noise", 3, batch_size=4))
    # The same standard-normal draw scaled by each severity's std: the signs agree.
    low, high = (
        robustness.corrupted(images, "noise", s, batch_size=4).float() - images.float()
        for s in (2, 5)
    )
    moved = (low.abs() > 2) & (high.abs() > 2)
    assert (torch.sign(low[moved]) == torch.sign(high[moved])).float().mean() > 0.99


def test_levels_must_grow_in_strength_and_severities_must_exist():
    with pytest.raises(ValueError, match="increase strictly"):
        GaussianNoise(levels=[0.1, 0.05])
    with pytest.raises(ValueError, match="decrease strictly"):
        ContrastLoss(levels=[0.5, 0.7])
    with pytest.raises(MedsslError, match=r"severities must lie in 1\.\.2"):
        Robustness(True, {"noise": GaussianNoise([0.1, 0.2])}, [1, 3], seed=0)
    with pytest.raises(MedsslError, match="lists no corruption"):
        Robustness(True, {"noise": None}, [1], seed=0)


def test_jpeg_quantisation_matches_libjpeg_on_breastmnist(medmnist_root):
    images = np.load(medmnist_root / "breastmnist.npz")["test_images"][:12]
    x = torch.as_tensor(images[:, None]).float() / 255
    for quality in (80, 30, 10):
        ours = (jpeg_quantise(x, quality) * 255).round().numpy()[:, 0]
        theirs = []
        for image in images:
            buffer = io.BytesIO()
            Image.fromarray(image).save(buffer, "JPEG", quality=quality)
            theirs.append(np.asarray(Image.open(buffer), dtype=np.float64))
        theirs = np.stack(theirs)
        # Pillow's integer DCT rounds differently, by well under a grey level on average,
        # while the quantisation itself moves pixels by several.
        assert np.abs(ours - theirs).mean() < 0.5, quality
        assert np.abs(ours - images).mean() > 1.5, quality
