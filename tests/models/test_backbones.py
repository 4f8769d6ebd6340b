"""Backbones: small stems at 28/64 px, ViT image size from the data, local weights with 1-channel
adaptation, and a clear error when timm's hub cannot be reached."""

from __future__ import annotations

import pytest
import timm
import torch
from hydra.utils import instantiate
from torch import nn

from medssl.errors import MedsslError
from medssl.models.backbone import create_backbone
from tests.conftest import compose_config


@pytest.mark.parametrize(
    ("name", "attr"),
    [("resnet18", "conv1"), ("convnext_atto", "stem.0"), ("efficientnet_b0", "conv_stem")],
)
def test_small_input_makes_the_stem_stride_one(name, attr):
    model = create_backbone(
        name, in_chans=1, input_size=28, small_input="auto", pretrained=False, weights=None
    )
    conv = model.get_submodule(attr)
    assert isinstance(conv, nn.Conv2d) and conv.stride == (1, 1) and conv.in_channels == 1
    big = create_backbone(
        name, in_chans=1, input_size=224, small_input="auto", pretrained=False, weights=None
    )
    assert big.get_submodule(attr).stride != (1, 1)
    out = model.eval()(torch.randn(2, 1, 28, 28))
    assert out.shape == (2, model.num_features) and torch.isfinite(out).all()


@pytest.mark.parametrize("backbone", ["vit_tiny", "vit_small"])
@pytest.mark.parametrize("size", [28, 64])
def test_vit_takes_the_dataset_image_size_and_smaller_crops(backbone, size):
    cfg = compose_config([f"backbone={backbone}"])
    model = instantiate(cfg.backbone, in_chans=1, input_size=size).eval()
    assert model.patch_embed.img_size == (size, size)
    assert model.patch_embed.num_patches == (size // 4) ** 2
    assert model(torch.randn(2, 1, size, size)).shape == (2, model.num_features)
    assert model(torch.randn(2, 1, 12, 12)).shape == (2, model.num_features)  # DINO local crops


def test_generic_timm_option_takes_any_model_name():
    cfg = compose_config(["backbone=timm", "backbone.name=mobilenetv3_small_050"])
    model = instantiate(cfg.backbone, in_chans=1, input_size=28)
    assert type(model).__name__ == "MobileNetV3"
    with pytest.raises(MedsslError, match="no model named"):
        create_backbone(
            "not_a_model",
            in_chans=1,
            input_size=28,
            small_input="auto",
            pretrained=False,
            weights=None,
        )


def test_local_rgb_weights_load_into_a_one_channel_encoder(tmp_path):
    rgb = timm.create_model("resnet18", num_classes=10, in_chans=3)
    path = tmp_path / "resnet18_rgb.pth"
    torch.save({"state_dict": rgb.state_dict()}, path)
    model = create_backbone(
        "resnet18",
        in_chans=1,
        input_size=224,
        small_input="auto",
        weights=str(path),
        pretrained=False,
    )
    # timm's adaptation for one channel: the RGB kernels summed.
    torch.testing.assert_close(model.conv1.weight, rgb.conv1.weight.sum(dim=1, keepdim=True))
    torch.testing.assert_close(model.layer4[1].conv2.weight, rgb.layer4[1].conv2.weight)
    with pytest.raises(MedsslError, match="does not fit the model: missing"):
        create_backbone(
            "resnet34",
            in_chans=1,
            input_size=224,
            small_input="auto",
            weights=str(path),
            pretrained=False,
        )
    odd = {**rgb.state_dict(), "layer1.0.conv1.weight": torch.zeros(64, 64, 5, 5)}
    torch.save(odd, tmp_path / "odd.pth")
    with pytest.raises(MedsslError, match="has shape"):
        create_backbone(
            "resnet18",
            in_chans=1,
            input_size=224,
            small_input="auto",
            weights=str(tmp_path / "odd.pth"),
            pretrained=False,
        )
    with pytest.raises(MedsslError, match="not a file"):
        create_backbone(
            "resnet18",
            in_chans=1,
            input_size=224,
            small_input="auto",
            weights=str(tmp_path / "missing.pth"),
            pretrained=False,
        )


def test_pretrained_without_network_says_so(monkeypatch):
    import huggingface_hub.constants

    # Offline mode fails at once instead of waiting for network timeouts; the error is the same.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(MedsslError, match="backbone.weights=PATH"):
        create_backbone(
            "resnet18", in_chans=1, input_size=28, small_input="auto", pretrained=True, weights=None
        )
