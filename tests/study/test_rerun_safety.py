"""A finished run folder survives every rerun that is not its own (issue 34, defects 1 and 2).

Through the real CLIs (`train.py`, `python -m medssl.cli.evaluate`): a refused rerun must leave the
folder's record byte for byte (results.json, encoder.pt, config.yaml, labelled_indices.json and
Hydra's .hydra/), write no error.json, and the sweep report must still count the finished run.
Also in process: a multirun job refused the same way, a folder an older medssl let a refused
rerun poison, and a disk that fills up (a 2 MB tmpfs where the machine lets us mount one).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from medssl.run import run
from medssl.study.job import FAILED_ATTEMPT, run_job
from medssl.study.report import write_report
from medssl.study.run_record import config_hash
from medssl.study.sweep_summary import SweepSummary
from tests.conftest import REPO, compose_config

pytestmark = pytest.mark.integration

# `T` of the issue, made quick: one epoch of the small CNN on BreastMNIST, no figures.
T = ["trainer.epochs=1", "backbone=smallcnn", "dataset=breastmnist", "eval_outputs.figures=false"]
RECORD = (
    "results.json",
    "encoder.pt",
    "config.yaml",
    "labelled_indices.json",
    ".hydra/config.yaml",
    ".hydra/overrides.yaml",
)


def _cli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HYDRA_FULL_ERROR": "0", "WANDB_MODE": "offline"}
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def _train(cwd: Path, *overrides: str) -> subprocess.CompletedProcess:
    return _cli(cwd, str(REPO / "train.py"), *T, "hydra.run.dir=R", *overrides)


def _digests(folder: Path) -> dict[str, str]:
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in RECORD}


def _refused(proc: subprocess.CompletedProcess, sentence: str) -> None:
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output[-3000:]
    assert "Traceback" not in output
    (line,) = [line for line in output.splitlines() if sentence in line]
    assert line.rstrip().endswith(")."), line


def _counted_as_finished(folder: Path) -> None:
    markdown = write_report(folder, out=folder.parent / "report").read_text()
    assert "1 runs finished, 0 failed" in markdown


@pytest.fixture(scope="module")
def finished(tmp_path_factory, medmnist_root) -> Path:
    """`T hydra.run.dir=R`, finished, its encoder served from the encoder cache."""
    os.environ["MEDMNIST_ROOT"] = str(medmnist_root)
    cwd = tmp_path_factory.mktemp("rerun")
    proc = _train(cwd)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert not (cwd / "R" / "checkpoints").exists()  # the checkpoints live in the cache entry
    return cwd / "R"


def test_a_rejected_rerun_leaves_a_finished_folder_as_it_was(finished):
    """Defect 1: `T label_frac=0`, then a refused resume (another temperature), then `T`."""
    cwd, before = finished.parent, _digests(finished)
    _refused(_train(cwd, "label_frac=0"), "holds the finished results of another configuration")
    _refused(_train(cwd, "method.loss.temperature=0.33"), "(different method.loss.temperature)")
    assert _digests(finished) == before and not (finished / "error.json").exists()

    again = _train(cwd)
    assert again.returncode == 0 and "its results.json is complete" in again.stdout + again.stderr
    assert _digests(finished) == before
    _counted_as_finished(finished)


def test_neither_evaluate_nor_another_seed_replaces_a_finished_result(finished):
    """Defect 2: `medssl.cli.evaluate` into a training run's folder; `T seed=1` on a seed-0 one
    whose encoder came from the cache (so no checkpoint refusal could fire)."""
    cwd, before = finished.parent, _digests(finished)
    evaluate = _cli(
        cwd, "-m", "medssl.cli.evaluate", f"ckpt={finished / 'encoder.pt'}", "dataset=breastmnist",
        "eval=[knn]", "hydra.run.dir=R",
    )  # fmt: skip
    _refused(evaluate, "holds the results of a training run, which medssl.cli.evaluate never")
    _refused(_train(cwd, "seed=1"), "another configuration (different seed)")
    assert _digests(finished) == before and not (finished / "error.json").exists()
    _counted_as_finished(finished)


def test_a_refused_sweep_job_is_counted_at_the_sweep_end_and_touches_nothing(
    finished, tmp_path, monkeypatch, caplog
):
    job = tmp_path / "sweep" / "label_frac=0.1"
    shutil.copytree(finished, job)
    before = _digests(job)
    cfg = compose_config([*T, "seed=1"])
    assert run_job(run, cfg, job, multirun=True) is None
    assert _digests(job) == before and not (job / "error.json").exists()
    assert "different seed" in json.loads((job / FAILED_ATTEMPT).read_text())["error"]

    summary = SweepSummary()
    summary.started -= 60
    sweep = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path / "sweep")}}})
    with pytest.raises(SystemExit) as end, caplog.at_level(logging.INFO):
        summary.on_multirun_end(sweep)
    assert end.value.code == 1 and "1 job(s) failed" in caplog.text

    # The job's own configuration then skips it and clears the note.
    assert run_job(run, compose_config(T), job, multirun=True) is not None
    assert not (job / FAILED_ATTEMPT).exists()


def test_the_correct_rerun_repairs_a_folder_an_older_version_let_a_refused_run_poison(
    finished, tmp_path, caplog
):
    """Before issue 34 a refused run left its error.json beside the results and its
    config.yaml in place of theirs; the report then counted the run as failed."""
    folder = tmp_path / "R"
    shutil.copytree(finished, folder)
    (folder / "config.yaml").write_text(
        (folder / "config.yaml").read_text().replace("label_frac: 0.1", "label_frac: 0.0")
    )
    refused = compose_config([*T, "label_frac=0"])
    (folder / "error.json").write_text(
        json.dumps(
            {"error": "label_frac must lie in (0, 1]", "run/config_hash": config_hash(refused)}
        )
    )
    cfg = compose_config(T)
    with caplog.at_level(logging.INFO):
        results = run_job(run, cfg, folder)
    assert results["run/config_hash"] == config_hash(cfg)
    assert "its results.json is complete" in caplog.text
    assert not (folder / "error.json").exists()
    assert (folder / "config.yaml").read_bytes() == (finished / "config.yaml").read_bytes()
    _counted_as_finished(folder)


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MB tmpfs: smaller than the small CNN's first checkpoint."""
    mount = tmp_path / "small_disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({done.stderr.strip()[:100]}); the "
                    "in-process ENOSPC cases of tests/test_bad_input.py stand in")  # fmt: skip
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def test_a_full_disk_is_one_sentence_naming_the_file(small_disk, medmnist_root, caplog, capfd):
    os.environ["MEDMNIST_ROOT"] = str(medmnist_root)
    folder = small_disk / "R"
    cfg = compose_config([*T, "cache.enabled=false"])
    with pytest.raises(SystemExit) as stop, caplog.at_level(logging.INFO):
        run_job(run, cfg, folder)
    output = caplog.text + "".join(capfd.readouterr())
    assert stop.value.code == 1 and "Traceback" not in output
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    full = f"could not write {folder}/checkpoints/last.pt: the disk is full;"
    assert any(e.startswith(full) and "\n" not in e for e in errors), errors
    assert (folder / "config.yaml").is_file()  # written before the disk filled, and whole
    assert not list(folder.rglob("*.tmp"))  # no half-written checkpoint left behind
