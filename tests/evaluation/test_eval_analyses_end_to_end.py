"""A real BreastMNIST run with robustness, a PneumoniaMNIST shift, MC dropout and the
CAM-refined head: every key, figure and summary section, and a clear error for a mismatch."""

from __future__ import annotations

import json
import math

import pytest

from tests.conftest import run_train

pytestmark = pytest.mark.integration

ARGS = [
    "backbone=smallcnn",
    "trainer.epochs=1",
    "trainer.batch_size=128",
    "eval=[linear,finetune]",
    "eval.finetune.epochs=2",
    "eval.finetune.head_only_epochs=1",
    "eval.finetune.head=cam_refine",
    "eval.analyses.robustness.enabled=true",
    "eval.analyses.robustness.severities=[1,5]",
    "eval.analyses.mc_dropout.samples=5",
    "eval/analyses/shift_dataset=pneumoniamnist",
    "eval_outputs.tsne_max_iter=250",
    "eval_outputs.tsne_perplexity=10",
]


@pytest.mark.slow  # 40-80 s on two shared cores: pretraining, two protocols, 12 corrupted sets
def test_breastmnist_run_with_every_analysis(tmp_path, medmnist_root):
    proc = run_train(ARGS, tmp_path, {"MEDMNIST_ROOT": str(medmnist_root)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = tmp_path / "run"
    results = json.loads((run / "results.json").read_text())
    for protocol in ("linear", "finetune"):
        for corruption in ("noise", "blur", "contrast", "brightness", "jpeg", "resolution"):
            for severity in (1, 5):
                for metric in ("auroc", "acc", "ece", "ece_ts"):
                    key = f"test/{protocol}/corrupt/{corruption}/{severity}/{metric}"
                    assert math.isfinite(results[key]), key
        for metric in ("auroc", "acc", "ece_ts", "aurc"):
            assert math.isfinite(results[f"shift/pneumoniamnist/{protocol}/{metric}"])
        assert (run / "figures" / f"robustness_{protocol}.png").exists()
    assert results["shift/pneumoniamnist/n"] == 624
    for key in ("aurc", "aurc_mi", "acc", "auroc", "entropy_mean", "mutual_info_mean"):
        assert math.isfinite(results[f"test/finetune/mc/{key}"]), key
    assert "test/linear/mc/aurc" not in results  # the probe has no dropout to sample
    lines = (run / "mc_dropout_finetune.csv").read_text().splitlines()
    assert len(lines) == 1 + results["n/test"]
    for figure in ("coverage_mc_finetune", "cam_refine_maps_finetune"):
        assert (run / "figures" / f"{figure}.png").exists(), figure
    summary = (run / "summary.md").read_text()
    for section in ("Corrupted test images", "Shift to pneumoniamnist", "MC dropout (test"):
        assert section in summary, section


@pytest.mark.slow  # a train.py process: about 10 s of imports and data before evaluation refuses
def test_a_shift_dataset_of_another_shape_is_refused_in_one_sentence(tmp_path, medmnist_root):
    proc = run_train(
        [
            "backbone=smallcnn",
            "method=random",
            "dataset.size=64",
            "eval/analyses/shift_dataset=breastmnist",
            "eval_outputs.figures=false",
        ],
        tmp_path,
        {"MEDMNIST_ROOT": str(medmnist_root)},
    )
    assert proc.returncode == 1
    error = json.loads((tmp_path / "run" / "error.json").read_text())
    assert error["error"].startswith(
        "eval.analyses.shift_dataset 'breastmnist' has 1-channel 28 px images and a binary task with 2 "
        "classes but dataset 'breastmnist' has 1-channel 64 px images"
    )
    assert error["error_type"] == "MedsslError"
