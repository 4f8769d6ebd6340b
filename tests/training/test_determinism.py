"""`trainer.deterministic=true`: the same seed gives the same results.json through the real
`train.py`, another seed does not."""

from __future__ import annotations

import json

import pytest
import torch

from medssl.training.device import set_deterministic
from tests.conftest import run_train

ARGS = [
    "backbone=smallcnn",
    "trainer.epochs=2",
    "trainer.batch_size=128",
    "trainer.deterministic=true",
    "cache.enabled=false",  # each run trains its own encoder: the comparison is of training
    "eval_outputs.figures=false",
    "eval=[linear,knn]",
]


def metrics(tmp_path, medmnist_root, seed: int) -> dict:
    tmp_path.mkdir()
    proc = run_train([*ARGS, f"seed={seed}"], tmp_path, {"MEDMNIST_ROOT": str(medmnist_root)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    return {
        k: v
        for k, v in results.items()
        if k.startswith(("val/", "test/", "pretrain/")) and "path" not in k and "seconds" not in k
    }


@pytest.mark.integration
def test_same_seed_same_metrics_other_seed_other_metrics(tmp_path, medmnist_root):
    first = metrics(tmp_path / "a", medmnist_root, seed=0)
    again = metrics(tmp_path / "b", medmnist_root, seed=0)
    other = metrics(tmp_path / "c", medmnist_root, seed=1)
    assert len(first) > 50 and first == again
    assert first["test/linear/auroc"] != other["test/linear/auroc"]
    assert first["pretrain/final_loss"] != other["pretrain/final_loss"]


def test_the_flag_switches_torch_to_deterministic_algorithms():
    """On a CPU the runs above repeat even without the flag; this pins what the flag does."""
    cudnn = torch.backends.cudnn
    before = torch.are_deterministic_algorithms_enabled(), cudnn.benchmark, cudnn.deterministic
    try:
        set_deterministic(False)
        assert not torch.are_deterministic_algorithms_enabled()
        set_deterministic(True)
        assert torch.are_deterministic_algorithms_enabled()
        assert cudnn.deterministic and not cudnn.benchmark
    finally:
        torch.use_deterministic_algorithms(before[0])
        cudnn.benchmark, cudnn.deterministic = before[1], before[2]
