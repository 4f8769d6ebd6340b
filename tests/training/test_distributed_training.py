"""Real torchrun with the gloo backend: two processes pretrain one model with DDP."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("feed", ["resident", "streamed"])
def test_torchrun_two_processes_train_and_the_main_one_writes(tmp_path, medmnist_root, feed):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    run = tmp_path / "run"
    cmd = [
        torchrun,
        "--standalone",
        "--nproc_per_node=2",
        str(REPO / "train.py"),
        "backbone=smallcnn",
        "trainer.epochs=2",
        "trainer.batch_size=128",
        f"trainer.feed={feed}",
        "eval_outputs.figures=false",
        f"hydra.run.dir={run}",
    ]
    env = {**os.environ, "MEDMNIST_ROOT": str(medmnist_root), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((run / "results.json").read_text())
    assert results["world_size"] == 2 and results["n/pretrain"] == 546
    assert f"Feeding pretraining batches {feed}" in (run / "train.log").read_text()
    log = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2]  # written once, by the main process
    assert log[1]["loss"] < log[0]["loss"]
    assert 0.0 <= results["test/linear/auroc"] <= 1.0
