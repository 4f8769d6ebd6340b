"""`backbone.input.transform=pretrained`: medssl's features of stored images equal timm's own
model applied with its pretrained config's transform (timm.data.resolve_data_config and
create_transform); the transform follows the encoder into copies, pretraining and fine-tuning."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import timm
import torch
from hydra.utils import instantiate
from PIL import Image
from timm.data import create_transform, resolve_data_config

from medssl.components import build
from medssl.data.model_input import to_model_input
from medssl.data.pretrained_input import input_transform
from medssl.errors import MedsslError
from medssl.training.features import extract_features
from tests.conftest import compose_config

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def images(medmnist_root) -> torch.Tensor:
    """Four genuine BreastMNIST test images, `(4, 1, 28, 28)` uint8."""
    with np.load(medmnist_root / "breastmnist.npz") as npz:
        return torch.from_numpy(npz["test_images"][:4]).unsqueeze(1)


def saved_timm_weights(name: str, path) -> timm.models.VisionTransformer:
    """timm's `name`, randomly initialised (no download here), its state dict saved at `path`."""
    torch.manual_seed(0)
    model = timm.create_model(name, num_classes=0).eval()
    torch.save(model.state_dict(), path)
    return model


def medssl_encoder(option: str, weights, *overrides: str):
    cfg = compose_config(
        [f"backbone={option}", f"backbone.weights={weights}", "backbone.input.transform=pretrained"]
        + list(overrides)
    )
    return instantiate(cfg.backbone, in_chans=1, input_size=28)


def timm_reference(model, images: torch.Tensor, pad_to: int | None = None) -> torch.Tensor:
    """timm's model on the images as PIL RGB through its pretrained config's eval transform
    (crop_pct 1: the whole image, as medssl keeps it), or pasted on black first (`pad_to`)."""
    config = resolve_data_config({}, model=model)
    transform = create_transform(**{**config, "crop_pct": 1.0})
    pictures = [Image.fromarray(image[0].numpy()).convert("RGB") for image in images]
    if pad_to is not None:
        canvases = [Image.new("RGB", (pad_to, pad_to)) for _ in pictures]
        offset = (pad_to - images.shape[-1]) // 2
        for canvas, picture in zip(canvases, pictures):
            canvas.paste(picture, (offset, offset))
        pictures = canvases
    with torch.no_grad():
        return model(torch.stack([transform(p) for p in pictures]))


@pytest.mark.parametrize(
    "option,name,overrides",
    [
        ("vit_tiny", "vit_tiny_patch16_224", ["backbone.patch_size=null"]),
        ("resnet18", "resnet18", []),
    ],
)
def test_features_equal_timm_with_its_pretrained_transform(
    option, name, overrides, images, tmp_path
):
    reference = saved_timm_weights(name, tmp_path / "weights.pt")
    encoder = medssl_encoder(option, tmp_path / "weights.pt", *overrides)
    ours = extract_features(encoder, images, device=CPU)
    expected = timm_reference(reference, images)
    # PIL resizes in 8 bits, medssl in float: the inputs differ by the rounding of a pixel.
    scale = expected.abs().max()
    assert torch.allclose(ours, expected, atol=2e-2 * scale), (ours - expected).abs().max()
    # On the float image timm's transform (torchvision on tensors) and medssl's agree closely.
    config = resolve_data_config({}, model=reference)
    transform = create_transform(**{**config, "crop_pct": 1.0})
    floats = torch.stack([transform(i.float().div(255).expand(3, -1, -1)) for i in images])
    with torch.no_grad():
        assert torch.allclose(ours, reference(floats), atol=1e-4 * scale)


def test_zero_pad_centres_the_image_on_black_as_medmnist_plus(images, tmp_path):
    reference = saved_timm_weights("resnet18", tmp_path / "weights.pt")
    encoder = medssl_encoder("resnet18", tmp_path / "weights.pt", "backbone.input.fit=zero_pad")
    ours = extract_features(encoder, images, device=CPU)
    expected = timm_reference(reference, images, pad_to=224)
    assert torch.allclose(ours, expected, atol=1e-5 * expected.abs().max())


def test_the_transform_follows_the_encoder_into_copies_and_training_views(tmp_path):
    """Teachers (BYOL, DINO) and fine-tuning deep-copy the encoder; pretraining calls it on
    augmented views: each sees the weights' size and channels."""
    cfg = compose_config(["backbone=resnet18", "backbone.input.transform=pretrained"])
    encoder = instantiate(cfg.backbone, in_chans=1, input_size=28).eval()
    seen = []
    encoder.conv1.register_forward_hook(lambda m, i, o: seen.append(tuple(i[0].shape)))
    x = to_model_input(torch.randint(0, 256, (2, 1, 28, 28), dtype=torch.uint8))
    twin = copy.deepcopy(encoder)
    with torch.no_grad():
        assert torch.equal(twin(x), encoder(x))
        assert twin.forward_features(x).shape[-1] == 7  # 224 px / 32
    assert seen == [(2, 3, 224, 224)] * 3  # the twin's calls too: the hook was copied with it
    assert input_transform(twin) == input_transform(encoder)
    assert (
        encoder.state_dict().keys()
        == timm.create_model("resnet18", num_classes=0).state_dict().keys()
    )


def test_vit_takes_another_size_with_dynamic_img_size(tmp_path):
    """DINOv2-style: `input.size` below the weights' own, position embeddings interpolated."""
    cfg = compose_config(
        ["backbone=vit_tiny", "backbone.patch_size=null", "backbone.input.transform=pretrained"]
        + ["backbone.input.size=64", "backbone.img_size=224"]
    )
    encoder = instantiate(cfg.backbone, in_chans=1, input_size=28).eval()
    with torch.no_grad():
        out = encoder(to_model_input(torch.zeros(2, 1, 28, 28, dtype=torch.uint8)))
    assert out.shape == (2, encoder.num_features)
    assert input_transform(encoder).size == 64


def test_bad_input_settings_are_one_sentence():
    cfg = compose_config(["backbone=resnet18", "backbone.input.transform=imagenet"])
    with pytest.raises(MedsslError, match="backbone.input.transform must be one of"):
        build(cfg, "backbone", in_chans=1, input_size=28)
    cfg = compose_config(
        ["backbone=resnet18", "backbone.input.transform=pretrained", "backbone.input.fit=zero_pad"]
        + ["backbone.input.size=16"]
    )
    with pytest.raises(MedsslError, match="cannot pad 28 px images to 16 px"):
        build(cfg, "backbone", in_chans=1, input_size=28)
