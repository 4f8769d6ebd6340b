"""The feature cache: a label-fraction grid extracts each split once; the scores are those of
an uncached evaluation; the key changes with the weights' content, the input transform and
the images, and with nothing else a job varies."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate

from medssl.data.label_subset import labelled_subset
from medssl.data.medmnist_source import load_medmnist
from medssl.data.splits import Split
from medssl.evaluation.feature_cache import (
    FeatureCache,
    encoder_material,
    feature_key,
    split_digest,
)
from medssl.evaluation.runner import evaluate_as_configured
from medssl.models.small_cnn import SmallCNN
from tests.conftest import compose_config

CPU = torch.device("cpu")
EVAL = ["eval=[knn]", "eval_outputs.figures=false"]


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


def small_cnn(seed: int = 0) -> SmallCNN:
    torch.manual_seed(seed)
    return SmallCNN(1, width=4, name="smallcnn", input_size=28).eval()


def evaluate(encoder, data, label_frac: float, cache_dir, run_dir) -> dict:
    cfg = compose_config([*EVAL, f"label_frac={label_frac}"])
    labelled = labelled_subset(data.train.labels, label_frac, cfg.label_seed)
    return evaluate_as_configured(
        cfg,
        encoder,
        data,
        labelled,
        run_dir=run_dir,
        device=CPU,
        precision="fp32",
        augmentation=None,
        cache_dir=cache_dir,
    )


def test_a_label_fraction_grid_extracts_features_once(breast, tmp_path):
    encoder = small_cnn()
    seen = []  # images the encoder was run on, batch by batch
    encoder.register_forward_hook(lambda module, args, out: seen.append(len(args[0])))
    every_image = len(breast.train) + len(breast.val) + len(breast.test)
    cached = {}
    for frac in (0.01, 0.05, 0.1, 1.0):
        cached[frac] = evaluate(encoder, breast, frac, tmp_path / "cache", tmp_path / "run")
        assert sum(seen) == every_image, frac  # the first job's extraction, and no other
    assert len(list((tmp_path / "cache" / "features").glob("*.npy"))) == 3
    uncached = evaluate(encoder, breast, 0.05, None, tmp_path / "plain")
    for key in ("test/knn/auroc", "val/knn/auroc", "test/knn/ece"):
        assert cached[0.05][key] == pytest.approx(uncached[key], abs=1e-6), key


def test_key_changes_with_the_weights_content_and_nothing_else_of_the_encoder():
    encoder = small_cnn()
    material = encoder_material(encoder, None, "fp32")
    assert encoder_material(small_cnn(), None, "fp32") == material  # same content, new object
    changed = small_cnn()
    with torch.no_grad():
        changed.features[0][0].weight[0, 0, 0, 0] += 1e-3
    assert encoder_material(changed, None, "fp32")["weights"] != material["weights"]
    statistics = small_cnn()
    statistics.features[0][1].running_mean += 1.0  # a buffer is content too
    assert encoder_material(statistics, None, "fp32")["weights"] != material["weights"]
    assert encoder_material(encoder, None, "bf16") != material


def test_key_changes_with_the_input_transform(tmp_path):
    def material(*overrides):
        cfg = compose_config(["backbone=resnet18", *overrides])
        torch.manual_seed(0)
        encoder = instantiate(cfg.backbone, in_chans=1, input_size=28)
        return encoder_material(encoder, None, "fp32")

    pretrained = ["backbone.input.transform=pretrained", "backbone.small_input=false"]
    plain = material("backbone.small_input=false")
    resized = material(*pretrained)
    padded = material(*pretrained, "backbone.input.fit=zero_pad")
    smaller = material(*pretrained, "backbone.input.size=112")
    assert plain["input_transform"] is None
    assert resized["input_transform"]["fit"] == "resize"
    assert len({repr(m["input_transform"]) for m in (plain, resized, padded, smaller)}) == 4
    assert len({feature_key(m, "images") for m in (plain, resized, padded, smaller)}) == 4


def test_key_changes_with_the_split_images(breast):
    material = encoder_material(small_cnn(), None, "fp32")
    images = breast.val.images.clone()
    images[0, 0, 0, 0] ^= 1
    other = Split(images, breast.val.labels)
    assert split_digest(other) != split_digest(breast.val)
    assert feature_key(material, split_digest(other)) != feature_key(
        material, split_digest(breast.val)
    )


def test_an_unreadable_file_is_extracted_again(tmp_path):
    cache = FeatureCache(tmp_path)
    cache.path("k").write_bytes(b"not a numpy file")
    features = cache.get_or_extract("k", lambda: torch.ones(3, 2).numpy())
    assert features.shape == (3, 2)
    assert cache.get_or_extract("k", lambda: pytest.fail("extracted again")).sum() == 6
