"""Every option of every config group composes and instantiates."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hydra.utils import get_class, instantiate
from omegaconf import OmegaConf

from medssl.augment.pipeline import ViewPipeline
from medssl.data.splits import DatasetSplits
from medssl.data.task import Task
from medssl.methods.base import Method, task_arguments
from tests.conftest import CONF, compose_config, write_fake_medmnist


def options(group: str) -> list[str]:
    """A group's options: every file in its folder (a base that options include lives outside
    the group folders, so that Hydra's --help lists only what can be chosen)."""
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def test_default_config_composes_with_expected_top_level_keys():
    cfg = compose_config()
    assert cfg.label_frac == 0.1
    assert cfg.label_seed == cfg.seed
    for key in (
        "method",
        "backbone",
        "dataset",
        "augmentation",
        "eval",
        "trainer",
        "optimizer",
        "scheduler",
    ):
        assert key in cfg, key


def test_typo_in_top_level_key_fails_at_composition():
    with pytest.raises(Exception, match="label_fraq"):
        compose_config(["label_fraq=0.1"])


@pytest.mark.parametrize("name", options("dataset"))
def test_every_dataset_loads(name, tmp_path):
    cfg = compose_config([f"dataset={name}"])
    if cfg.dataset._target_.endswith("load_medmnist"):
        write_fake_medmnist(tmp_path, cfg.dataset.name)
        data = instantiate(cfg.dataset, root=str(tmp_path), download=False)
        import medmnist

        info = medmnist.INFO[cfg.dataset.name]
        assert data.channels == info["n_channels"]
        assert data.num_classes == len(info["label"])
    else:
        pytest.skip(f"{name} is covered by its own dataset tests")
    assert isinstance(data, DatasetSplits)
    assert data.train.images.dtype == torch.uint8


def test_medmnist_options_hold_only_their_name_and_their_own_facts():
    """The keys every MedMNIST dataset shares live once, in conf/medmnist_base.yaml (outside the
    group, so that `--help` does not list it as an option)."""
    base = OmegaConf.load(CONF / "medmnist_base.yaml")
    medmnist = [
        n
        for n in options("dataset")
        if "/medmnist_base" in (CONF / "dataset" / f"{n}.yaml").read_text()
    ]
    assert len(medmnist) == 12
    for name in medmnist:
        own = OmegaConf.load(CONF / "dataset" / f"{name}.yaml")
        assert own.name == name and list(own.defaults) == ["/medmnist_base", "_self_"]
        assert set(own) <= {"defaults", "name", "positive_class", "references"}, name
        groups = (
            "dataset",
            "pretrain_dataset",
            "eval/analyses/shift_dataset",
        )  # each at its package
        cfg = compose_config([f"{group}={name}" for group in groups])
        for group in groups:
            node = OmegaConf.select(cfg, group.replace("/", "."))
            assert node.name == name and node.size == base.size and node._target_ == base._target_


@pytest.mark.parametrize("name", options("backbone"))
@pytest.mark.parametrize("channels", [1, 3])
def test_every_backbone_builds_and_returns_features(name, channels):
    if name == "vit_base_dino" and channels == 1:
        pytest.skip("a ViT-B like vit_small: 3 channels, as its DINO weights, are enough")
    cfg = compose_config([f"backbone={name}"])
    encoder = instantiate(cfg.backbone, in_chans=channels, input_size=32)
    out = encoder.eval()(torch.randn(2, channels, 32, 32))
    assert out.shape == (2, encoder.num_features)


@pytest.mark.parametrize("name", options("method"))
def test_every_method_builds_and_gives_a_loss(name):
    cfg = compose_config([f"method={name}", "backbone=smallcnn"])
    encoder = instantiate(cfg.backbone, in_chans=1, input_size=28)
    cls = get_class(cfg.method._target_)
    task = task_arguments(cls, Task.BINARY, 2, train_labels=np.arange(8) % 2)
    method = instantiate(cfg.method)(backbone=encoder, **task)
    assert isinstance(method, Method)
    views = [torch.randn(8, 1, 28, 28) for _ in range(2)]
    out = method(views, torch.arange(8) % 2)
    assert out["loss"].ndim == 0 and torch.isfinite(out["loss"])


@pytest.mark.parametrize("name", options("augmentation"))
@pytest.mark.parametrize("channels", [1, 3])
def test_every_augmentation_gives_views_of_the_input_shape(name, channels):
    cfg = compose_config([f"augmentation={name}"])
    pipeline = instantiate(cfg.augmentation)
    images = torch.randint(0, 256, (4, channels, 28, 28), dtype=torch.uint8)
    views = pipeline(images, torch.Generator().manual_seed(0))
    assert len(views) >= 1
    assert views[0].shape == (4, channels, 28, 28) and views[0].dtype == torch.float32
    if isinstance(pipeline, ViewPipeline):
        assert len(views) == pipeline.n_views


@pytest.mark.parametrize("name", options("eval"))
def test_every_eval_protocol_instantiates(name):
    cfg = compose_config([f"eval=[{name}]"])
    protocols = {key: instantiate(value) for key, value in cfg.eval.items()}
    assert name in protocols


def test_optimizer_and_scheduler_build_from_config():
    cfg = compose_config(["backbone=smallcnn"])
    model = instantiate(cfg.backbone, in_chans=1, input_size=28)
    optimizer = instantiate(cfg.optimizer)(model, batch_size=512)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(cfg.optimizer.base_lr * 2)
    scheduler = instantiate(cfg.scheduler)(optimizer, epochs=10, steps_per_epoch=5)
    lrs = []
    for step in range(50):
        scheduler.step_update(step)
        lrs.append(optimizer.param_groups[0]["lr"])
    peak = max(lrs)
    assert lrs[0] < peak  # warm-up rises
    assert lrs.index(peak) == 15  # 3 warm-up epochs of 5 steps
    assert lrs[-1] < 0.05 * peak  # cosine decays to ~0
