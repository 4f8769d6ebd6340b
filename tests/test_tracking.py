"""W&B tracking in offline mode: a real wandb run written into the run folder, resumed under the
same id, grouped and tagged, with figures, and never holding an API key."""

from __future__ import annotations

import json

import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from medssl.tracking import WandbTracker, flatten
from tests.conftest import CONF, run_train

FAKE_KEY = "0123456789abcdef0123456789abcdef01234567"  # 40 characters, like a real key


def tracker_from_config(**changes) -> WandbTracker:
    """The `logger=wandb` option's tracker, with `changes` as command-line overrides would."""
    return instantiate(OmegaConf.load(CONF / "logger" / "wandb.yaml"), **changes)


def _blob(run_dir):
    records = sorted((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))
    # wandb's record file is protobuf; names and string values are stored as plain bytes in it.
    return records, b"".join(p.read_bytes() for p in records)


@pytest.mark.integration
def test_wandb_offline_run_is_flat_tagged_resumable_and_keyless(tmp_path, medmnist_root):
    args = [
        "logger=wandb",
        "backbone=smallcnn",
        "trainer.epochs=1",
        "trainer.batch_size=128",
    ]
    env = {"MEDMNIST_ROOT": str(medmnist_root), "WANDB_MODE": "offline", "WANDB_API_KEY": FAKE_KEY}
    proc = run_train(args, tmp_path, env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = tmp_path / "run"
    records, blob = _blob(run)
    assert len(records) == 1
    for key in (
        "pretrain/loss",
        "test/linear/auroc",
        "label_frac",
        "trainer.epochs",  # the config is flat
        "method._target_",
        "figures/reliability",  # figures logged as images
        "pretrain+evaluate",  # the job type
        "simclr",  # a tag
    ):
        assert key.encode() in blob, key
    run_id = json.loads((run / "wandb_run.json").read_text())["id"]
    assert records[0].parent.name.endswith(run_id)

    # Started again in its folder (here: its results removed, as after a kill), the job
    # continues the same W&B run.
    (run / "results.json").unlink()
    again = run_train(args, tmp_path, env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads((run / "wandb_run.json").read_text())["id"] == run_id
    assert all(p.parent.name.endswith(run_id) for p in _blob(run)[0])

    leaked = [p for p in tmp_path.rglob("*") if p.is_file() and FAKE_KEY.encode() in p.read_bytes()]
    assert not leaked


def test_tracker_groups_tags_and_closes_a_failed_run(tmp_path):
    tracker = tracker_from_config(mode="offline", tags=["mine"])
    run_id = tracker.start(
        {"trainer": {"epochs": 3}, "method": "simclr"},
        tmp_path,
        name="job",
        group="label_efficiency/breastmnist",
        job_type="pretrain+evaluate",
        tags=["simclr", "mine"],
    )
    run = tracker._run
    assert run.group == "label_efficiency/breastmnist" and run.job_type == "pretrain+evaluate"
    assert list(run.tags) == ["mine", "simclr"]
    assert run.config["trainer.epochs"] == 3 and run.config["method"] == "simclr"
    tracker.finish(None, failed=True)
    tracker.finish(None, failed=True)  # twice is harmless
    assert json.loads((tmp_path / "wandb_run.json").read_text())["id"] == run_id


def test_logger_config_wins_over_the_sweep_defaults(tmp_path):
    tracker = tracker_from_config(mode="offline", group="mine", job_type="ablation")
    tracker.start({}, tmp_path, name="job", group="sweep", job_type="pretrain+evaluate")
    assert tracker._run.group == "mine" and tracker._run.job_type == "ablation"
    tracker.finish({"test/auroc": 0.9})


def test_flatten_nested_config():
    assert flatten({"a": {"b": 1, "c": {"d": [1, 2]}}, "e": None}) == {
        "a.b": 1,
        "a.c.d": [1, 2],
        "e": None,
    }
