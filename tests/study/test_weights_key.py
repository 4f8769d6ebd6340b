"""An encoder started from weights (`backbone.weights`, `init=pretrained`) is cached
under their content and the input transform they are shown, never under a path alone."""

from __future__ import annotations

import shutil

import pytest
import torch

from medssl.data.medmnist_source import load_medmnist
from medssl.models.small_cnn import SmallCNN
from tests.conftest import compose_config, key_of


@pytest.fixture(scope="module")
def breast(medmnist_root):
    return load_medmnist(
        "breastmnist",
        28,
        str(medmnist_root),
        False,
        positive_class=0,
        references=[],
        store_dir=None,
    )


def saved_small_cnn(path, seed: int):
    torch.manual_seed(seed)
    torch.save(SmallCNN(1, width=32, name="smallcnn", input_size=28).state_dict(), path)
    return path


def test_key_follows_the_weights_content_not_their_path(breast, tmp_path):
    first = saved_small_cnn(tmp_path / "a.pt", seed=0)
    copied = shutil.copyfile(first, tmp_path / "copy_of_a.pt")
    other = saved_small_cnn(tmp_path / "b.pt", seed=1)
    key = key_of([f"backbone.weights={first}"], breast)
    assert key_of([f"backbone.weights={copied}"], breast) == key
    assert key_of([f"backbone.weights={other}"], breast) != key


def test_key_changes_with_the_input_transform(breast):
    resnet = ["backbone=resnet18", "backbone.small_input=false"]
    plain = key_of(resnet, breast)
    pretrained = key_of([*resnet, "backbone.input.transform=pretrained"], breast)
    padded = key_of(
        [*resnet, "backbone.input.transform=pretrained", "backbone.input.fit=zero_pad"], breast
    )
    assert len({plain, pretrained, padded}) == 3


def test_init_pretrained_starts_any_method_from_pretrained_weights_with_their_input():
    cfg = compose_config(["method=vicreg", "init=pretrained"])
    assert cfg.method._target_.endswith("VICReg")
    assert cfg.backbone.pretrained is True
    assert cfg.backbone.input.transform == "pretrained"
