"""`train.py` end to end on genuine BreastMNIST, and its answers to bad input."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.conftest import run_train

pytestmark = pytest.mark.integration

TINY = [
    "backbone=smallcnn",
    "trainer.epochs=2",
    "trainer.batch_size=128",
    "eval_outputs.figures=false",
]
METRICS = ("acc", "auroc", "f1_macro", "ece")


@pytest.mark.parametrize("method", ["simclr", "vicreg", "supervised"])
def test_train_writes_results_with_every_metric(method, tmp_path, medmnist_root):
    extra = ["method.proj_hidden_dim=128", "method.proj_dim=128"] if method == "vicreg" else []
    proc = run_train(
        [f"method={method}", *TINY, *extra], tmp_path, {"MEDMNIST_ROOT": str(medmnist_root)}
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = tmp_path / "run"
    results = json.loads((run / "results.json").read_text())
    for split in ("val", "test"):
        for metric in METRICS:
            value = results[f"{split}/linear/{metric}"]
            assert 0.0 <= value <= 1.0, (split, metric, value)
    assert results["n/labelled"] == 55 and results["n/test"] == 156 and results["n/val"] == 78
    assert results["n/pretrain"] == (55 if method == "supervised" else 546)
    assert results["pretrain/epochs"] == 2 and results["seed"] == 0 and results["label_seed"] == 0
    assert results["time/total_s"] > 0
    indices = json.loads((run / "labelled_indices.json").read_text())["indices"]
    assert len(indices) == 55
    log_lines = (run / "train_log.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in log_lines] == [1, 2]
    assert (run / "encoder.pt").exists() and (run / "config.yaml").exists()
    assert "pretrain" in proc.stderr  # the progress bar


def test_help_lists_every_config_group(tmp_path):
    proc = run_train(["--help"], tmp_path)
    assert proc.returncode == 0
    for group in ("method", "backbone", "dataset", "augmentation", "eval"):
        assert f"{group}: " in proc.stdout, group
    assert "vicreg" in proc.stdout and "pneumoniamnist" in proc.stdout


def _assert_clean_failure(proc, *phrases):
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    for phrase in phrases:
        assert phrase in output, output[-2000:]
    assert "Traceback" not in output


def test_unknown_method_lists_the_options(tmp_path):
    proc = run_train(["method=bogus"], tmp_path)
    _assert_clean_failure(proc, "method/bogus", "simclr")


@pytest.mark.parametrize("frac", ["0", "1.5"])
def test_label_frac_out_of_range(frac, tmp_path, medmnist_root):
    proc = run_train([f"label_frac={frac}", *TINY], tmp_path, {"MEDMNIST_ROOT": str(medmnist_root)})
    _assert_clean_failure(proc, "label_frac must lie in (0, 1]")


def test_label_frac_too_small_gives_the_smallest_valid_value(tmp_path, medmnist_root):
    proc = run_train(["label_frac=0.001", *TINY], tmp_path, {"MEDMNIST_ROOT": str(medmnist_root)})
    # BreastMNIST's rarer class has 147 training images: 0.5 / 147 = 0.0034.
    _assert_clean_failure(proc, "without a labelled image", "0.003401")


def test_missing_file_offline(tmp_path):
    root = tmp_path / "empty"
    proc = run_train(["dataset=pneumoniamnist", *TINY], tmp_path, {"MEDMNIST_ROOT": str(root)})
    _assert_clean_failure(proc, "pneumoniamnist.npz is not in", str(root))


def test_corrupt_file(tmp_path, medmnist_root):
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(medmnist_root / "breastmnist.npz", root)
    with open(root / "breastmnist.npz", "r+b") as handle:
        handle.seek(100)
        handle.write(b"\0" * 2000)
    proc = run_train(TINY, tmp_path, {"MEDMNIST_ROOT": str(root)})
    _assert_clean_failure(proc, "corrupt")
