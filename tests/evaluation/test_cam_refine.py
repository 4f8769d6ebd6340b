"""The CAM-refined fine-tuning head: maps of the feature map's shape, a loss that falls on real
BreastMNIST images, fine-tuning through the real config, and a clear error for a ViT."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from medssl import MedsslError
from medssl.data.model_input import to_model_input
from medssl.data.splits import DatasetSplits, Split
from medssl.evaluation.analyses import class_maps_figure
from medssl.evaluation.cam_refine import CAMRefineHead, normalise_maps
from medssl.evaluation.protocol import EvalInputs
from medssl.models.backbone import create_backbone
from medssl.models.small_cnn import SmallCNN
from tests.conftest import compose_config
from tests.evaluation.conftest import blob_inputs


@pytest.fixture(scope="module")
def finetune_config():
    return compose_config(
        ["eval=[finetune]", "eval.finetune.head=cam_refine", "eval.finetune.epochs=2"]
    ).eval.finetune


def head(channels: int, n_outputs: int = 2, **changes) -> CAMRefineHead:
    settings = dict(
        thresholds=[0.25, 0.5, 0.75],
        attention_heads=4,
        refine_weight=1.0,
        cam_weight=0.5,
        sparsity_weight=0.05,
    )
    return CAMRefineHead(channels, n_outputs, "binary", **{**settings, **changes})


def test_maps_have_the_feature_maps_spatial_shape_and_lie_in_0_1():
    torch.manual_seed(0)
    encoder = SmallCNN(in_chans=1, width=8, name="smallcnn", input_size=28).eval()
    feature_map = encoder.forward_features(torch.randn(3, 1, 28, 28))
    cam = head(feature_map.shape[1], n_outputs=4)
    out = cam.outputs(feature_map)
    assert out["maps"].shape == (3, 4, *feature_map.shape[-2:]) == (3, 4, 4, 4)
    assert out["logits"].shape == out["cam_logits"].shape == (3, 4)
    # The CAM logits are the class maps' spatial means (GAP, then the 1x1 convolution).
    torch.testing.assert_close(out["cam_logits"], out["maps"].mean(dim=(2, 3)))
    maps = cam.class_maps(feature_map)
    assert maps.min() >= 0 and maps.max() <= 1
    torch.testing.assert_close(maps.flatten(2).amax(2), torch.ones(3, 4), atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="must divide"):
        head(30, attention_heads=4)
    with pytest.raises(ValueError, match="thresholds"):
        head(32, thresholds=[1.5])
    assert normalise_maps(torch.ones(1, 1, 2, 2)).abs().max() == 0  # a flat map stays finite


def test_cam_refine_loss_falls_on_real_breastmnist(medmnist_root):
    arrays = np.load(medmnist_root / "breastmnist.npz")
    images = torch.as_tensor(arrays["train_images"][:96, None])
    labels = torch.as_tensor(arrays["train_labels"][:96, 0], dtype=torch.long)
    torch.manual_seed(0)
    encoder = SmallCNN(in_chans=1, width=8, name="smallcnn", input_size=28)
    cam = head(encoder.num_features)
    optimizer = torch.optim.Adam([*encoder.parameters(), *cam.parameters()], lr=3e-3)
    x = to_model_input(images)
    history = []
    for _ in range(25):
        parts = cam.training_loss(encoder.forward_features(x), labels)
        optimizer.zero_grad()
        parts["loss"].backward()
        optimizer.step()
        history.append({k: v.item() for k, v in parts.items()})
    first, last = history[0], history[-1]
    assert last["loss"] < 0.7 * first["loss"], (first, last)
    assert last["loss/refine"] < first["loss/refine"] and last["loss/cam"] < first["loss/cam"]
    assert 0 <= last["loss/sparsity"] <= 1


def test_finetune_with_cam_refine_from_the_config_gives_maps_and_draws_them(
    finetune_config, tmp_path
):
    # bf16 autocast for the encoder, as train.py's precision=auto gives on CPUs that have it;
    # the head must still run in fp32.
    inputs = dataclasses.replace(blob_inputs(), precision="bf16")
    out = instantiate(finetune_config).evaluate(inputs)
    maps = out.class_maps(inputs.images["test"][:5])
    # 16 px through SmallCNN's three stride-2 blocks: a 2x2 feature map.
    assert maps.shape == (5, 2, 2, 2) and maps.dtype == np.float32
    assert out.test.shape == (64, 2) and np.isfinite(out.test).all()
    np.testing.assert_allclose(out.predict(inputs.images["test"]), out.test)
    data = DatasetSplits(
        "blobs",
        "binary",
        ["left", "right"],
        *(
            Split(inputs.images[s], torch.as_tensor(inputs.labels[s]))
            for s in ("train", "val", "test")
        ),
    )
    assert class_maps_figure("finetune", out, data, 4, tmp_path).exists()


def test_cam_refine_refuses_a_vit_in_one_sentence(finetune_config):
    inputs = blob_inputs()
    vit = create_backbone(
        "vit_tiny_patch16_224",
        in_chans=1,
        input_size=16,
        small_input=False,
        pretrained=False,
        weights=None,
        patch_size=4,
        img_size=16,
        depth=1,
    )
    inputs = EvalInputs(**{**inputs.__dict__, "encoder": vit, "_features": {}})
    with pytest.raises(MedsslError, match="needs a CNN backbone with a spatial feature map"):
        instantiate(finetune_config).build_model(inputs)
