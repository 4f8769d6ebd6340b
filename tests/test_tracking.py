"""W&B tracking in offline mode: a real wandb run written into the run folder."""

from __future__ import annotations

import json

from tests.conftest import run_train


def test_wandb_offline_run_holds_epochs_and_results(tmp_path, medmnist_root):
    args = ["logger=wandb", "backbone=smallcnn", "trainer.epochs=2", "trainer.batch_size=128"]
    proc = run_train(args, tmp_path, {"MEDMNIST_ROOT": str(medmnist_root), "WANDB_MODE": "offline"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = tmp_path / "run"
    records = list((run / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(records) == 1
    # wandb's record file is protobuf; metric names are stored as plain strings in it.
    blob = records[0].read_bytes()
    for key in ("pretrain/loss", "pretrain/lr", "test/linear/auroc", "label_frac"):
        assert key.encode() in blob, key
    assert json.loads((run / "results.json").read_text())["test/linear/auroc"] > 0
