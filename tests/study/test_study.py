"""The study through the real `train.py -m`: one pretraining per SSL method and seed, failures
that do not stop the sweep, and a second start that runs nothing again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from medssl.study.report import write_report
from tests.conftest import REPO

pytestmark = pytest.mark.integration

# The smoke preset, plus a fraction too small for BreastMNIST's classes: those jobs must fail.
FAILING_FRAC = "0.001"


def sweep(tmp_path: Path, medmnist_root: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        str(REPO / "train.py"),
        "-m",
        "+experiment=smoke",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        *args,
    ]
    env = {**os.environ, "MEDMNIST_ROOT": str(medmnist_root), "HYDRA_FULL_ERROR": "0"}
    return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)


def job_results(tmp_path: Path) -> dict[str, dict]:
    return {
        p.parent.name: json.loads(p.read_text())
        for p in sorted((tmp_path / "sweep").glob("*/results.json"))
    }


def cache_entries(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "multirun" / ".encoders").glob("*/pretraining.json"))


def test_smoke_sweep_pretrains_once_per_method_and_seed_survives_failures_and_resumes(
    tmp_path, medmnist_root
):
    proc = sweep(tmp_path, medmnist_root, f"label_frac=0.1,1.0,{FAILING_FRAC}")
    log = proc.stdout + proc.stderr
    assert proc.returncode == 1, log[-3000:]  # the sweep ran to its end and reports failures
    results = job_results(tmp_path)
    assert len(results) == 8  # 2 methods x 2 fractions x 2 seeds finished
    errors = sorted((tmp_path / "sweep").glob("*/error.json"))
    assert len(errors) == 4 and all(f"label_frac={FAILING_FRAC}" in str(p) for p in errors)
    error = json.loads(errors[0].read_text())
    assert "without a labelled image" in error["error"] and error["error_type"] == "MedsslError"
    assert error["config/method"] in ("simclr", "supervised") and error["label_frac"] == 0.001
    assert "4 job(s) failed" in log

    # The report of the real sweep: finished cells with intervals, the failed column as such.
    markdown = write_report(tmp_path / "sweep").read_text()
    assert "8 runs finished, 4 failed" in markdown
    simclr_row = next(line for line in markdown.splitlines() if line.startswith("| simclr |"))
    cells = [c.strip() for c in simclr_row.strip("|").split("|")][1:]
    assert cells[0] == "failed" and all("(n=2)" in c and "±" in c for c in cells[1:])

    # SimCLR pretrained once per seed and was reused at the other fraction; the supervised
    # baseline trains on its labelled subset, so never shares across fractions.
    simclr = [r for r in results.values() if r["config/method"] == "simclr"]
    supervised = [r for r in results.values() if r["config/method"] == "supervised"]
    assert sum(not r["pretrain/reused"] for r in simclr) == 2  # SSL methods x seeds
    assert sum(r["pretrain/reused"] for r in simclr) == 2
    assert len({r["pretrain/cache_key"] for r in simclr}) == 2
    assert not any(r["pretrain/reused"] for r in supervised)
    assert len({r["pretrain/cache_key"] for r in supervised}) == 4
    assert len(cache_entries(tmp_path)) == 6
    assert log.count("Pretraining encoder") == 6 and log.count("Reusing encoder") == 2
    for r in simclr:  # the same encoder file whatever the fraction
        key = r["pretrain/cache_key"]
        assert r["pretrain/encoder_path"].endswith("encoder.pt")
        assert (tmp_path / "multirun" / ".encoders" / key / "encoder.pt").exists()

    # Started again: the finished jobs are skipped, nothing trains or evaluates again.
    mtimes = {p: p.stat().st_mtime for p in (tmp_path / "sweep").glob("*/results.json")}
    again = sweep(tmp_path, medmnist_root, f"label_frac=0.1,1.0,{FAILING_FRAC}")
    log = again.stdout + again.stderr
    assert again.returncode == 1, log[-3000:]  # the impossible jobs still fail
    assert log.count("its results.json is complete") == 8
    for phrase in ("Pretraining encoder", "Reusing encoder", "Evaluating with"):
        assert phrase not in log
    assert {p: p.stat().st_mtime for p in mtimes} == mtimes
    assert len(cache_entries(tmp_path)) == 6


def test_smoke_sweep_through_submitit_runs_parallel_jobs_that_share_the_encoder(
    tmp_path, medmnist_root
):
    """submitit's local executor starts every job at once, as a SLURM array would: the two
    jobs of one seed race for its SimCLR encoder; the lock lets one train and the other wait."""
    proc = sweep(tmp_path, medmnist_root, "hydra/launcher=local", "seed=0")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    results = job_results(tmp_path)
    assert len(results) == 4
    simclr = [r for r in results.values() if r["config/method"] == "simclr"]
    assert sorted(r["pretrain/reused"] for r in simclr) == [False, True]
    assert len(cache_entries(tmp_path)) == 3  # 1 SimCLR + 2 supervised
    assert list((tmp_path / "sweep" / ".submitit").iterdir())  # submitit's own job folders


def test_skip_done_false_evaluates_again_from_the_cached_encoder(tmp_path, medmnist_root):
    job = ("method=simclr", "label_frac=0.1", "seed=0")
    first = sweep(tmp_path, medmnist_root, *job)
    assert first.returncode == 0, first.stderr[-3000:]
    again = sweep(tmp_path, medmnist_root, *job, "skip_done=false")
    assert again.returncode == 0, again.stderr[-3000:]
    log = again.stdout + again.stderr
    assert "Reusing encoder" in log and "Pretraining encoder" not in log
    (result,) = job_results(tmp_path).values()
    assert result["pretrain/reused"] is True


# One SimCLR job of 17 steps per epoch in deterministic mode: long enough to be stopped inside
# an epoch, short enough for the fast suite (4 epochs of under a second).
KILL_JOB = (
    "method=simclr",
    "label_frac=0.1",
    "seed=0",
    "trainer.epochs=4",
    "trainer.batch_size=32",
    "trainer.deterministic=true",
    "trainer.checkpoint_every=null",  # a checkpoint each epoch, so the kill lands after one
)


@pytest.fixture(scope="module")
def uninterrupted_job(tmp_path_factory, medmnist_root) -> dict:
    folder = tmp_path_factory.mktemp("straight")
    straight = sweep(folder, medmnist_root, *KILL_JOB)
    assert straight.returncode == 0, straight.stderr[-3000:]
    (results,) = job_results(folder).values()
    return results


def _start_and_signal_after_first_checkpoint(folder, medmnist_root, signum) -> int:
    cmd = [
        sys.executable,
        str(REPO / "train.py"),
        "-m",
        "+experiment=smoke",
        f"hydra.sweep.dir={folder / 'sweep'}",
        *KILL_JOB,
    ]
    env = {**os.environ, "MEDMNIST_ROOT": str(medmnist_root)}
    proc = subprocess.Popen(
        cmd, cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    checkpoints = folder / "multirun" / ".encoders"
    deadline = time.monotonic() + 300
    while not list(checkpoints.glob("*/checkpoints/last.pt")) and proc.poll() is None:
        assert time.monotonic() < deadline, "no checkpoint was written"
        time.sleep(0.01)
    # Past the first epoch's bookkeeping, into the 17 steps of the next (each tens of ms).
    time.sleep(0.1)
    proc.send_signal(signum)
    return proc.wait(timeout=120)


SAME = ("pretrain/final_loss", "test/linear/auroc", "test/linear/ece", "val/linear/auroc")


def test_a_killed_sweep_job_resumes_from_its_checkpoint_and_ends_as_an_uninterrupted_one(
    tmp_path, medmnist_root, uninterrupted_job
):
    # SIGKILL: no chance to clean up, as on a node that dies.
    assert _start_and_signal_after_first_checkpoint(tmp_path, medmnist_root, signal.SIGKILL) < 0
    assert not list((tmp_path / "sweep").glob("*/results.json"))
    resumed = sweep(tmp_path, medmnist_root, *KILL_JOB)
    log = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, log[-3000:]
    assert "Resuming from" in log and "(epoch 4 done)" not in log
    (results,) = job_results(tmp_path).values()
    for key in SAME:
        assert results[key] == uninterrupted_job[key], key


def test_sigterm_stops_a_sweep_job_inside_an_epoch_and_it_resumes_at_that_step(
    tmp_path, medmnist_root, uninterrupted_job
):
    # SIGTERM: what SLURM sends before it kills a job at its time limit or on pre-emption.
    assert _start_and_signal_after_first_checkpoint(tmp_path, medmnist_root, signal.SIGTERM) == 143
    assert not list((tmp_path / "sweep").glob("*/error.json"))  # stopped is not failed
    resumed = sweep(tmp_path, medmnist_root, *KILL_JOB)
    log = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, log[-3000:]
    assert "steps into epoch" in log  # not the start of the epoch
    (results,) = job_results(tmp_path).values()
    for key in SAME:
        assert results[key] == uninterrupted_job[key], key
