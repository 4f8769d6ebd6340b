"""`+experiment=hparam_search`: Hydra's Optuna sweeper driving the real train.py, its study in
SQLite under the sweep folder, continued by a second start, failed trials recorded as failed."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import optuna
import pytest

from medssl.study.optuna_search import continuing_seed, direction, objective, storage_url
from tests.conftest import REPO

# One epoch of the small CNN, only the linear probe, nothing drawn: seconds per trial.
TINY = [
    "trainer.epochs=1",
    "trainer.batch_size=128",
    "trainer.online_probe=false",
    "eval_outputs.figures=false",
]


def search(tmp_path, *args: str) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        str(REPO / "train.py"),
        "-m",
        "+experiment=hparam_search",
        "dataset=breastmnist",
        "hydra.sweeper.n_trials=3",
        *TINY,
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        *args,
    ]
    env = {**os.environ, "HYDRA_FULL_ERROR": "0", "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


def stored_study(tmp_path) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name="train", storage=storage_url(str(tmp_path / "sweep")))


@pytest.mark.integration
def test_search_writes_its_study_and_a_second_start_adds_trials(tmp_path, medmnist_root):
    first = search(tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert (tmp_path / "sweep" / "optuna.db").is_file()
    study = stored_study(tmp_path)
    assert study.direction == optuna.study.StudyDirection.MAXIMIZE  # val AUROC
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 3
    assert set(study.trials[0].params) == {
        "optimizer.base_lr",
        "method.loss.temperature",
        "ablation",
        "augmentation",
    }  # trainer.epochs is fixed on the command line, so it is not searched
    results = sorted((tmp_path / "sweep").glob("*/results.json"))
    assert len(results) == 3  # one folder per trial, named by its overrides

    again = search(tmp_path, "hydra.sweeper.n_trials=2")
    assert again.returncode == 0, again.stderr[-3000:]
    trials = stored_study(tmp_path).trials
    assert len(trials) == 5 and all(t.value is not None for t in trials)
    drawn = {tuple(sorted(t.params.items())) for t in trials}
    assert len(drawn) == 5  # the second start drew new configurations, not the first ones
    assert len(list((tmp_path / "sweep").glob("*/results.json"))) == 5


@pytest.mark.integration
def test_a_failing_trial_is_recorded_failed_and_the_search_goes_on(tmp_path, medmnist_root):
    # A negative learning rate is refused before anything runs. Only the learning rate is
    # searched (the rest fixed), and TPE's random start with seed 11 draws it for the first
    # trial only.
    fixed = ["augmentation=medical", "ablation=recipe", "method.loss.temperature=0.2"]
    proc = search(
        tmp_path, *fixed, "optimizer.base_lr=choice(-1.0,0.001)", "hydra.sweeper.sampler.seed=11"
    )
    states = [t.state.name for t in stored_study(tmp_path).trials]
    assert states == ["FAIL", "COMPLETE", "COMPLETE"], proc.stderr[-3000:]
    assert proc.returncode == 1  # the sweep's end lists the failed job, as in a grid
    assert "1 job(s) failed" in proc.stdout + proc.stderr


def test_the_objective_reports_only_a_finite_val_score_of_the_main_process():
    results = {"val/linear/auroc": 0.8, "val/knn/auroc": math.nan}
    assert objective(results, "linear/auroc", rank=0) == 0.8
    assert objective(results, "linear/auroc", rank=1) is None  # a non-main DDP rank
    assert objective(results, "knn/auroc", rank=0) is None  # non-finite
    assert objective(results, "finetune/auroc", rank=0) is None  # missing
    assert objective(None, "linear/auroc", rank=0) is None  # the job failed


def test_direction_follows_the_metric():
    assert direction("linear/auroc") == "maximize"
    assert direction("linear/ece_ts") == "minimize"


def test_the_seed_moves_on_with_the_stored_trials(tmp_path):
    storage = storage_url(str(tmp_path / "new" / "folder"))
    assert (tmp_path / "new" / "folder").is_dir()  # SQLite makes no folders
    assert continuing_seed(7, storage, "train") == 7  # no file yet
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="train", storage=storage)
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)
    assert continuing_seed(7, storage, "train") == 9
    assert continuing_seed(7, storage, "another") == 7


@pytest.mark.integration
def test_a_repeated_configuration_is_not_trained_again(tmp_path, medmnist_root):
    # Every searched key fixed: both trials ask for one configuration, so the second finds the
    # first one's results.json (skip_done) and reports its value.
    fixed = ["optimizer.base_lr=0.001", "method.loss.temperature=0.2", "ablation=recipe"]
    proc = search(tmp_path, "hydra.sweeper.n_trials=2", *fixed, "augmentation=medical")
    assert proc.returncode == 0, proc.stderr[-3000:]
    trials = stored_study(tmp_path).trials
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE"]
    assert trials[0].value == trials[1].value
    assert len(list((tmp_path / "sweep").glob("*/results.json"))) == 1
    assert "its results.json is complete" in proc.stdout + proc.stderr
