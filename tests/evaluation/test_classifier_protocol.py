"""The `classifier` protocol: the supervised baseline's own network, scored on real BreastMNIST."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from medssl import MedsslError
from medssl.cli.evaluate import evaluate_checkpoint, load_encoder
from medssl.configs import compose_config as compose_evaluate_config
from medssl.data.medmnist_source import load_medmnist
from medssl.data.model_input import to_model_input
from medssl.evaluation.classifier import TrainedClassifier
from medssl.evaluation.protocol import EvalInputs
from medssl.run import run
from tests.conftest import compose_config


def compose_evaluate(overrides: list[str]):
    return compose_evaluate_config(overrides, name="evaluate")


TINY_SUPERVISED = [
    "method=supervised",
    "method.select_on_val=true",
    "backbone=smallcnn",
    "augmentation=none",
    "augmentation.n_views=1",
    "trainer.epochs=3",
    "trainer.batch_size=64",
    "trainer.precision=fp32",
    "label_frac=0.25",
    "eval=[classifier]",
    "eval_outputs.figures=false",
]


@pytest.fixture(scope="module")
def supervised_runs(tmp_path_factory, medmnist_root):
    """One tiny supervised BreastMNIST run, and a second that reuses its cached encoder."""
    folder = tmp_path_factory.mktemp("classifier")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MEDMNIST_ROOT", str(medmnist_root))
        cfg = compose_config([*TINY_SUPERVISED, f"cache.dir={folder / 'encoders'}"])
        first = run(cfg, folder / "first")
        again = run(cfg, folder / "again")
    return folder, first, again


def test_classifier_reports_the_trained_network_at_the_epoch_picked_on_val(
    supervised_runs, medmnist_root
):
    folder, results, _ = supervised_runs
    for key in ("test/classifier/auroc", "test/classifier/acc", "test/classifier/ece",
                "test/classifier/ece_ts", "val/classifier/auroc", "classifier/temperature_ts"):  # fmt: skip
        assert key in results, key
    assert results["classifier/selected_epoch"] == results["pretrain/selected_epoch"]
    assert 1 <= results["pretrain/selected_epoch"] <= 3
    # Selection and evaluation score the same network the same way.
    assert results["val/classifier/auroc"] == pytest.approx(results["pretrain/selected_val_auroc"])

    # The test AUROC is sklearn's on the logits of the saved encoder and head.
    encoder, saved = load_encoder(folder / "first" / "encoder.pt")
    assert saved["selected_epoch"] == results["pretrain/selected_epoch"]
    head = torch.nn.Linear(*saved["head"]["weight"].shape[::-1])
    head.load_state_dict(saved["head"])
    test = load_medmnist(
        "breastmnist",
        size=28,
        root=str(medmnist_root),
        download=False,
        positive_class=0,
        references=[],
        store_dir=None,
    ).test
    with torch.no_grad():
        logits = head(encoder.eval()(to_model_input(test.images)))
    probs = torch.softmax(logits.double(), dim=1).numpy()
    expected = roc_auc_score(test.labels.numpy(), probs[:, 1])
    assert results["test/classifier/auroc"] == pytest.approx(expected, abs=1e-9)


def test_the_evaluate_cli_scores_the_saved_head_as_the_run_did(supervised_runs, tmp_path):
    folder, first, _ = supervised_runs
    cfg = compose_evaluate(
        [
            f"ckpt={folder / 'first' / 'encoder.pt'}",
            "eval=[classifier]",
            "eval_outputs.figures=false",
            "trainer.precision=fp32",
        ]
    )
    again = evaluate_checkpoint(cfg, tmp_path / "eval")
    for key in ("test/classifier/auroc", "test/classifier/acc", "classifier/selected_epoch"):
        assert again[key] == pytest.approx(first[key]), key


def test_a_reused_encoder_keeps_its_head(supervised_runs):
    _, first, again = supervised_runs
    assert again["pretrain/reused"] is True and first["pretrain/reused"] is False
    for key in ("test/classifier/auroc", "test/classifier/acc", "classifier/selected_epoch"):
        assert again[key] == first[key], key


def _inputs_without_head() -> EvalInputs:
    images = torch.zeros(4, 1, 8, 8, dtype=torch.uint8)
    labels = np.array([0, 1, 0, 1])
    return EvalInputs(
        task="binary",
        num_classes=2,
        encoder=torch.nn.Flatten(),
        images={"train": images, "val": images, "test": images},
        labels={"train": labels, "val": labels, "test": labels},
        device=torch.device("cpu"),
    )


def test_a_method_without_a_head_is_refused_in_one_sentence_or_skipped():
    with pytest.raises(MedsslError, match=r"^eval=classifier scores the head .* use eval=linear"):
        TrainedClassifier(missing_head="error").evaluate(_inputs_without_head())
    assert TrainedClassifier(missing_head="skip").evaluate(_inputs_without_head()) is None
    with pytest.raises(MedsslError, match="missing_head must be one of"):
        TrainedClassifier(missing_head="ignore")
