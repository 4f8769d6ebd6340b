"""`method=frozen`: pretrained weights scored by every protocol with nothing trained, under
its own name; an encoder without weights is refused; `train.py` runs it end to end."""

from __future__ import annotations

import json

import pytest
import torch

from medssl.data.label_subset import labelled_subset
from medssl.data.medmnist_source import load_medmnist
from medssl.errors import MedsslError
from medssl.evaluation.runner import evaluate_as_configured
from medssl.models.small_cnn import SmallCNN
from medssl.pretraining_setup import assemble_pretraining
from medssl.seeding import seed_everything
from medssl.study.encoder_cache import pretrain_or_reuse
from medssl.training.distributed import Distributed
from tests.conftest import compose_config, run_train

CPU = torch.device("cpu")
FAST = [
    "backbone=smallcnn",
    "backbone.width=8",
    "eval_outputs.figures=false",
    "trainer.device=cpu",
    "trainer.precision=fp32",
]
EVERY_PROTOCOL = [
    "eval=[linear,knn,finetune]",
    "eval.finetune.epochs=1",
    "eval.finetune.head_only_epochs=1",
    "eval.linear.Cs=[0.1,1.0]",
]


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


@pytest.fixture
def weights(tmp_path):
    """A SmallCNN's state dict with non-trivial BatchNorm statistics, as a saved encoder has."""
    torch.manual_seed(7)
    model = SmallCNN(1, width=8, name="smallcnn", input_size=28)
    model.train()(torch.randn(16, 1, 28, 28))  # moves the running statistics off their init
    path = tmp_path / "weights.pt"
    torch.save(model.state_dict(), path)
    return path


def test_frozen_trains_nothing_and_scores_every_protocol(breast, weights, tmp_path):
    cfg = compose_config([*FAST, *EVERY_PROTOCOL, "method=frozen", f"backbone.weights={weights}"])
    seed_everything(cfg.seed)
    labelled = labelled_subset(breast.train.labels, 0.1, cfg.label_seed)
    setup, data = assemble_pretraining(cfg, breast, labelled, CPU, "fp32")
    assert type(setup.method).__name__ == "Frozen" and not setup.trains
    pretrained = pretrain_or_reuse(
        setup,
        material={},
        key="unused",
        cache_dir=None,
        run_dir=tmp_path,
        device=CPU,
        encoder_record={},
        distributed=Distributed(),
        label_frac=0.1,
    )
    results = evaluate_as_configured(
        cfg,
        setup.method.encoder,
        data,
        labelled,
        run_dir=tmp_path,
        device=CPU,
        precision="fp32",
        augmentation=setup.augmentation,
    )
    assert pretrained.history == []
    saved = torch.load(weights, weights_only=True)
    after = setup.method.encoder.state_dict()
    assert saved.keys() == after.keys()
    for name, value in saved.items():  # parameters and BatchNorm buffers, bit for bit
        assert torch.equal(value, after[name]), name
    for protocol in ("linear", "knn", "finetune"):
        assert 0.0 <= results[f"test/{protocol}/auroc"] <= 1.0, protocol


def test_frozen_jobs_share_one_encoder_file_in_the_cache(breast, weights, tmp_path):
    """A grid of frozen jobs links one stored encoder.pt (a ViT-B/16 is 0.35 GB a copy)."""
    cfg = compose_config([*FAST, "method=frozen", f"backbone.weights={weights}"])
    labelled = labelled_subset(breast.train.labels, 0.1, cfg.label_seed)
    paths = []
    for job in ("a", "b"):
        setup, _ = assemble_pretraining(cfg, breast, labelled, CPU, "fp32")
        pretrained = pretrain_or_reuse(
            setup,
            material={"method": "frozen"},
            key="k",
            cache_dir=tmp_path / "cache",
            run_dir=tmp_path / job,
            device=CPU,
            encoder_record={},
            distributed=Distributed(),
            label_frac=0.1,
        )
        assert pretrained.history == [] and pretrained.encoder_path == tmp_path / job / "encoder.pt"
        paths.append(pretrained.encoder_path)
    assert (
        paths[0].stat().st_ino
        == paths[1].stat().st_ino
        == (tmp_path / "cache/k/encoder.pt").stat().st_ino
    )
    stored = torch.load(paths[0], weights_only=True)["state_dict"]
    for name, value in torch.load(weights, weights_only=True).items():
        assert torch.equal(stored[name], value), name


def test_frozen_refuses_an_encoder_without_weights(breast):
    cfg = compose_config([*FAST, "method=frozen"])
    labelled = labelled_subset(breast.train.labels, 0.1, cfg.label_seed)
    with pytest.raises(MedsslError, match="backbone.weights=PATH; method=random"):
        assemble_pretraining(cfg, breast, labelled, CPU, "fp32")


def test_the_random_floor_refuses_pretrained_weights(breast, weights):
    cfg = compose_config([*FAST, "method=random", f"backbone.weights={weights}"])
    labelled = labelled_subset(breast.train.labels, 0.1, cfg.label_seed)
    with pytest.raises(MedsslError, match="untrained floor.*method=frozen scores"):
        assemble_pretraining(cfg, breast, labelled, CPU, "fp32")


@pytest.mark.integration
def test_train_py_runs_frozen_with_local_weights_on_breastmnist(weights, tmp_path, medmnist_root):
    result = run_train(
        [
            *FAST,
            "eval=[linear,knn]",
            "method=frozen",
            f"backbone.weights={weights}",
            "dataset=breastmnist",
            f"dataset.root={medmnist_root}",
            f"cache.dir={tmp_path / 'encoders'}",
        ],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["config/method"] == "frozen"
    assert results["pretrain/epochs"] == 0
    assert {"test/linear/auroc", "test/knn/auroc"} <= results.keys()
    assert any((tmp_path / "encoders" / "features").glob("*.npy"))
