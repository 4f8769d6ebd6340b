"""The tuned label-efficiency study: a val search per method, then the grid with each method's best
recipe, recorded in tuning.json / tuning.md; a second start neither adds trials nor re-runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from omegaconf import OmegaConf

from medssl.study.optuna_search import STUDY_FILE
from medssl.study.tuned_study import (
    STUDY_NAME,
    TunedStudy,
    best_recipe,
    trial_counts,
    tuning_markdown,
)
from tests.conftest import REPO


def _study(folder: Path, **changes) -> TunedStudy:
    settings = dict(
        folder=folder,
        search_preset="hparam_search",
        grid_preset="label_efficiency",
        tuned=["simclr"],
        untuned=["random"],
        n_trials=3,
        search_epochs=None,
        significant_digits=3,
        overrides=[],
    )
    return TunedStudy(**{**settings, **changes})


def _stored_search(folder: Path, values: list[float | None]) -> None:
    """A search as the sweeper stores it: one trial per value, None for a failed one."""
    folder.mkdir(parents=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=STUDY_NAME, storage=f"sqlite:///{folder / STUDY_FILE}", direction="maximize"
    )
    for number, value in enumerate(values):
        trial = study.ask(
            {
                "optimizer.base_lr": optuna.distributions.LogUniformDistribution(1e-4, 1e-2),
                "augmentation": optuna.distributions.CategoricalDistribution(["medical", "byol"]),
            }
        )
        config = folder / str(number) / ".hydra" / "config.yaml"
        config.parent.mkdir(parents=True)
        config.write_text("optimize_metric: linear/auroc\n")
        if value is None:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            study.tell(trial, value)


def test_the_best_finished_trial_becomes_the_recipe_rounded(tmp_path):
    study = _study(tmp_path)
    _stored_search(study.search_folder("simclr"), [0.61, None, 0.74, 0.70])
    recipe = best_recipe(study, "simclr")
    stored = optuna.load_study(
        study_name=STUDY_NAME, storage=f"sqlite:///{study.search_folder('simclr') / STUDY_FILE}"
    )
    best = stored.trials[2]
    assert recipe.value == pytest.approx(0.74) and recipe.searched == best.params
    assert (recipe.finished, recipe.failed) == (3, 1)
    assert recipe.metric == "val/linear/auroc"
    lr = float(f"{best.params['optimizer.base_lr']:.3g}")
    assert recipe.overrides == sorted(
        [f"augmentation={best.params['augmentation']}", f"optimizer.base_lr={lr}"]
    )


def test_a_search_without_a_finished_trial_is_one_sentence(tmp_path):
    from medssl.errors import MedsslError

    study = _study(tmp_path)
    _stored_search(study.search_folder("simclr"), [None])
    assert trial_counts(study.search_folder("simclr") / STUDY_FILE) == (0, 1)
    with pytest.raises(MedsslError, match="finished no trial"):
        best_recipe(study, "simclr")


def test_tuning_table_names_each_recipe_its_val_score_and_the_untuned_ones():
    text = tuning_markdown(
        {
            "simclr": {
                "overrides": ["augmentation=byol", "optimizer.base_lr=0.0021"],
                "val_metric": "val/linear/auroc",
                "val_best": 0.8123,
                "trials_finished": 11,
                "trials_failed": 1,
            },
            "random": {"overrides": [], "untuned": True},
        }
    )
    assert "| simclr | `augmentation=byol`, `optimizer.base_lr=0.0021` |" in text, text
    assert "val/linear/auroc = 0.812 | 11 (1) |" in text
    assert "| random | as configured (not tuned) |" in text


def _tuned_study(tmp_path) -> tuple[subprocess.CompletedProcess, Path]:
    """The CLI in `tmp_path`, one tuned method with 2 trials of 1 epoch; and the study folder."""
    cmd = [
        sys.executable,
        "-m",
        "medssl.cli.tuned_study",
        "--n-trials=2",
        "--tuned=simclr",
        "--untuned=",  # the untuned rows run as any grid does; one method keeps the test short
        "dataset=breastmnist",
        "trainer.epochs=1",
        "trainer.batch_size=128",
        "trainer.online_probe=false",
        "eval_outputs.figures=false",
        "eval=[linear,classifier]",  # the grid preset's classifier section needs its protocol
        "eval.classifier.missing_head=skip",
        "label_frac=0.1",
        "seed=0",
    ]
    env = {**os.environ, "HYDRA_FULL_ERROR": "0", "OMP_NUM_THREADS": "1"}
    settings = OmegaConf.load(REPO / "conf" / "tuned_study.yaml")
    return subprocess.run(
        cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    ), tmp_path / settings.folder / "breastmnist"


# About 100 s of six interpreters (the CLI, a search, a grid, twice): `make test-all` runs it.
@pytest.mark.slow
@pytest.mark.integration
def test_the_study_searches_then_runs_the_grid_with_the_best_recipe_and_resumes(
    tmp_path, medmnist_root
):
    done, folder = _tuned_study(tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    tuning = json.loads((folder / "grid" / "tuning.json").read_text())
    assert tuning["simclr"]["trials_finished"] == 2
    assert tuning["simclr"]["val_metric"] == "val/linear/auroc"  # read from the trials' configs
    searched = tuning["simclr"]["searched"]
    jobs = {}
    for config in (folder / "grid").glob("*/.hydra/config.yaml"):
        cfg = OmegaConf.load(config)
        jobs[cfg.method._target_.rsplit(".", 1)[-1]] = (config.parents[1], cfg)
    assert set(jobs) == {"SimCLR"}
    simclr_folder, simclr = jobs["SimCLR"]
    temperature = searched["method.loss.temperature"]
    assert simclr.method.loss.temperature == pytest.approx(temperature, rel=1e-2)
    assert (simclr_folder / "results.json").is_file()
    assert "Recipes chosen on val" in (folder / "grid" / "report.md").read_text()

    finished = (simclr_folder / "results.json").stat().st_mtime_ns
    again, _ = _tuned_study(tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert trial_counts(folder / "search" / "simclr" / STUDY_FILE) == (2, 0)
    assert (simclr_folder / "results.json").stat().st_mtime_ns == finished
