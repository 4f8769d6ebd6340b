"""`pretrain_dataset=...`: pretrain on one dataset, evaluate on another, end to end."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from medssl.errors import MedsslError
from medssl.run import run
from tests.conftest import compose_config, run_train

TINY = ["backbone=smallcnn", "trainer.epochs=1", "trainer.batch_size=256", "augmentation=medical"]


@pytest.mark.integration
@pytest.mark.slow  # about a minute on 2 shared cores: a full PneumoniaMNIST epoch
def test_pretrain_on_pneumonia_probe_on_breast(tmp_path, medmnist_root):
    proc = run_train(
        ["pretrain_dataset=pneumoniamnist", *TINY], tmp_path, {"MEDMNIST_ROOT": str(medmnist_root)}
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["pretrain_dataset"] == "pneumoniamnist" and results["dataset"] == "breastmnist"
    assert (
        results["n/pretrain"] == 4708 and results["n/train"] == 546
    )  # PneumoniaMNIST's train split
    assert 0.0 <= results["test/linear/auroc"] <= 1.0


@pytest.mark.integration
def test_pretrain_on_unlabelled_folder_with_clahe(tmp_path, medmnist_root, monkeypatch):
    """In process (no interpreter start-up), so it stays in the fast suite."""
    monkeypatch.setenv("MEDMNIST_ROOT", str(medmnist_root))
    rng = np.random.default_rng(0)
    for i in range(300):
        image = cv2.GaussianBlur(rng.integers(0, 256, (40, 40), dtype=np.uint8), (5, 5), 1.5)
        path = tmp_path / "eyepacs" / f"part{i % 3}" / f"{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), image)
    cfg = compose_config(
        [
            "pretrain_dataset=unlabelled_folder",
            f"pretrain_dataset.root={tmp_path / 'eyepacs'}",
            "pretrain_dataset.size=28",
            "pretrain_dataset.channels=1",
            *TINY[:3],
            "augmentation=retina",
            "trainer.online_probe=false",
            "eval_outputs.figures=false",
            f"cache.dir={tmp_path / 'encoders'}",
        ]
    )
    results = run(cfg, tmp_path / "run")
    assert results["pretrain_dataset"] == "eyepacs" and results["dataset"] == "breastmnist"
    assert results["n/pretrain"] == 300 and 0.0 <= results["test/linear/auroc"] <= 1.0
    assert list((tmp_path / "eyepacs" / ".medssl-cache").glob("unlabelled-28px-1ch-uint8-*"))


def test_mismatched_pretrain_dataset_is_a_clear_error(tmp_path, medmnist_root, monkeypatch):
    monkeypatch.setenv("MEDMNIST_ROOT", str(medmnist_root))
    cfg = compose_config(["pretrain_dataset=breastmnist", "pretrain_dataset.size=64", *TINY])
    with pytest.raises(
        MedsslError,
        match="has 1-channel 64 px images but dataset 'breastmnist' has 1-channel 28 px",
    ):
        run(cfg, tmp_path / "run")


def test_unlabelled_folder_cannot_be_the_evaluation_dataset(tmp_path, monkeypatch):
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((8, 8), np.uint8))
    cv2.imwrite(str(tmp_path / "b.png"), np.zeros((8, 8), np.uint8))
    cfg = compose_config(["dataset=unlabelled_folder", f"dataset.root={tmp_path}", *TINY])
    with pytest.raises(
        MedsslError, match="has no labels to evaluate with; use it as pretrain_dataset"
    ):
        run(cfg, tmp_path / "run")
