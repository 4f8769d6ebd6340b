"""A real BreastMNIST run with every protocol writes every figure, key and the summary."""

from __future__ import annotations

import json
import math

import pytest
from PIL import Image

from tests.conftest import run_train

pytestmark = pytest.mark.integration

ARGS = [
    "backbone=smallcnn",
    "trainer.epochs=1",
    "trainer.batch_size=128",
    "eval=[linear,finetune,knn]",
    "eval.finetune.epochs=2",
    "eval.finetune.head_only_epochs=1",
    "eval_outputs.cam=true",
    "eval_outputs.tsne_max_iter=250",
    "eval_outputs.tsne_perplexity=10",
]
PROTOCOLS = ("linear", "finetune", "knn")
METRICS = (
    "acc",
    "balanced_acc",
    "auroc",
    "f1_macro",
    "precision",
    "recall",
    "kappa",
    "nll",
    "brier",
    "ece",
    "ece_mass",
    "mce",
)


@pytest.mark.slow  # 35-75 s on two shared cores: pretraining, three protocols, t-SNE and 17 figures
def test_breastmnist_run_writes_every_figure_and_key(tmp_path, medmnist_root):
    proc = run_train(ARGS, tmp_path, {"MEDMNIST_ROOT": str(medmnist_root)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = tmp_path / "run"
    results = json.loads((run / "results.json").read_text())
    for name in PROTOCOLS:
        for metric in METRICS:
            for key in (
                f"val/{name}/{metric}",
                f"test/{name}/{metric}",
                f"test/{name}/{metric}_ts",
            ):
                assert math.isfinite(results[key]), key
        assert (
            results[f"test/{name}/auroc_ts"] == results[f"test/{name}/auroc"]
        )  # binary: TS keeps the ranking
        assert results[f"{name}/temperature_ts"] > 0
        assert 0 <= results[f"test/{name}/aurc"] <= 1
        for t in ("0.50", "0.75", "0.95"):
            assert 0 <= results[f"test/{name}/abstain/{t}/coverage"] <= 1
        assert results[f"test/{name}/abstain/0.50/coverage"] == 1.0
        for op in ("sens0.90", "sens0.95", "spec0.90", "spec0.95", "youden"):
            for stat in ("threshold", "sensitivity", "specificity", "ppv", "npv"):
                assert f"test/{name}/op/{op}/{stat}" in results
        for figure in ("reliability", "coverage", "roc_pr", "confusion", "errors"):
            assert_png(run / "figures" / f"{figure}_{name}.png")
    assert (
        results["linear/C"] > 0
        and results["knn/k"] == 20
        and results["knn/temperature"] == 0.07
        # 0: the probe fine-tuning starts from scored best on val, which early stopping keeps
        and results["finetune/best_epoch"] in (0, 1, 2)
    )
    for figure in ("pca", "tsne", "gradcam_linear"):
        assert_png(run / "figures" / f"{figure}.png")
    summary = (run / "summary.md").read_text()
    for name in PROTOCOLS:
        assert f"| {name} | {results[f'test/{name}/acc']:.3f} |" in summary
    log = proc.stderr + ((run / "train.log").read_text() if (run / "train.log").exists() else "")
    assert "pip install umap-learn" in log or (run / "figures" / "umap.png").exists()


def assert_png(path) -> None:
    assert path.exists(), path
    with Image.open(path) as image:
        assert image.format == "PNG" and min(image.size) > 200, (path, image.size)
