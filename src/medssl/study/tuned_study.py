"""The label-efficiency study with each method's recipe chosen on val first (conf/tuned_study.yaml).

Two stages, each an ordinary `train.py -m` sweep, so every launcher (local, joblib, SLURM), the
encoder cache and skip-done work as in any study:
1. per tuned method, an Optuna search on val (`+experiment=hparam_search search=<method>`) into
   `<study>/search/<method>`, topped up to `n_trials` finished trials;
2. the grid preset per method with its best val recipe (the untuned ones as they are) into
   `<study>/grid`, whose `tuning.json` and `tuning.md` say which recipe each method used and the
   val numbers that chose it.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from medssl.atomic_files import write_bytes, write_json
from medssl.errors import MedsslError
from medssl.study.optuna_search import STUDY_FILE
from medssl.study.report.document import to_markdown
from medssl.study.report.tuning import TUNING_FILE, tuning_blocks

log = logging.getLogger("medssl")
STUDY_NAME = "train"  # conf/hydra/sweeper/optuna_search.yaml: the Hydra job's name


@dataclass(frozen=True)
class TunedStudy:
    folder: Path  # <folder>/<dataset name>
    search_preset: str
    grid_preset: str
    tuned: list[str]
    untuned: list[str]
    n_trials: int
    search_epochs: int | None
    significant_digits: int
    overrides: list[str]  # the user's: dataset, backbone, launcher...

    def search_folder(self, method: str) -> Path:
        return self.folder / "search" / method

    @property
    def grid_folder(self) -> Path:
        return self.folder / "grid"


@dataclass(frozen=True)
class Recipe:
    """A method's best val trial: what the grid runs it with, and why."""

    method: str
    overrides: list[str]
    searched: dict  # the trial's own values, unrounded
    metric: str
    value: float | None
    finished: int
    failed: int


def train_command(preset: str, overrides: list[str]) -> list[str]:
    """`train.py -m +experiment=<preset> OVERRIDES`, through the installed package."""
    return [sys.executable, "-m", "medssl.cli.train", "-m", f"+experiment={preset}", *overrides]


def _run(command: list[str]) -> bool:
    """Runs one `train.py -m` sweep; False when any of its jobs failed (it says which)."""
    log.info("Running %s", " ".join(command[1:]))
    return subprocess.run(command, check=False).returncode == 0


def trial_counts(storage: Path) -> tuple[int, int]:
    """(finished, failed) trials of the search stored at `storage` (0, 0 before its start)."""
    if not storage.exists():
        return 0, 0
    import optuna

    try:
        trials = optuna.load_study(study_name=STUDY_NAME, storage=f"sqlite:///{storage}").trials
    except KeyError:
        return 0, 0
    states = [trial.state for trial in trials]
    return states.count(optuna.trial.TrialState.COMPLETE), states.count(
        optuna.trial.TrialState.FAIL
    )


def search(study: TunedStudy, method: str) -> None:
    """Stage 1 for one method: run the trials still missing from its `n_trials`."""
    folder = study.search_folder(method)
    finished, _ = trial_counts(folder / STUDY_FILE)
    missing = study.n_trials - finished
    if missing <= 0:
        log.info("%s: the search holds %d finished trials, none to add", method, finished)
        return
    epochs = [] if study.search_epochs is None else [f"trainer.epochs={study.search_epochs}"]
    # A failed trial (a diverged learning rate) is recorded failed and the search goes on; the
    # sweep still exits 1 for it, so the study judges a search by its finished trials instead.
    _run(
        train_command(
            study.search_preset,
            [
                f"search={method}",
                *study.overrides,
                *epochs,
                f"hydra.sweep.dir={folder}",
                f"hydra.sweeper.n_trials={missing}",
                f"hydra.sweeper.study_name={STUDY_NAME}",
            ],
        )
    )


def _rounded(value, digits: int):
    return float(f"{value:.{digits}g}") if isinstance(value, float) else value


def best_recipe(study: TunedStudy, method: str) -> Recipe:
    """The best finished trial of `method`'s search, its values rounded for the grid."""
    import optuna

    storage = study.search_folder(method) / STUDY_FILE
    finished, failed = trial_counts(storage)
    if finished == 0:
        raise MedsslError(f"{method}: its search in {storage.parent} finished no trial.")
    stored = optuna.load_study(study_name=STUDY_NAME, storage=f"sqlite:///{storage}")
    best = stored.best_trial
    overrides = [f"{k}={_rounded(v, study.significant_digits)}" for k, v in best.params.items()]
    return Recipe(
        method=method,
        overrides=sorted(overrides),
        searched=dict(best.params),
        metric=_objective_metric(study.search_folder(method)),
        value=best.value,
        finished=finished,
        failed=failed,
    )


def _objective_metric(folder: Path) -> str:
    """The val metric the search judged by: `optimize_metric` in its jobs' own configs."""
    from omegaconf import OmegaConf

    for config in sorted(folder.glob("*/.hydra/config.yaml")):
        metric = OmegaConf.load(config).get("optimize_metric")
        if metric:
            return f"val/{metric}"
    return "val/<optimize_metric>"


def grid(study: TunedStudy, recipes: list[Recipe]) -> list[str]:
    """Stage 2: every method in one sweep folder, each with its own recipe; the methods whose
    sweep had a failed job (every method runs whatever another's sweep did)."""
    runs = [(r.method, r.overrides) for r in recipes] + [(m, []) for m in study.untuned]
    failed = []
    for method, overrides in runs:
        command = train_command(
            study.grid_preset,
            [
                f"method={method}",
                *overrides,
                *study.overrides,
                f"hydra.sweep.dir={study.grid_folder}",
            ],
        )
        if not _run(command):
            failed.append(method)
    return failed


def record(study: TunedStudy, recipes: list[Recipe]) -> None:
    """tuning.json and tuning.md in the grid folder: the recipe each method used, and why."""
    study.grid_folder.mkdir(parents=True, exist_ok=True)
    entries = {
        r.method: {
            "overrides": r.overrides,
            "searched": r.searched,
            "val_metric": r.metric,
            "val_best": r.value,
            "trials_finished": r.finished,
            "trials_failed": r.failed,
            "search_folder": str(study.search_folder(r.method)),
        }
        for r in recipes
    }
    entries.update({m: {"overrides": [], "untuned": True} for m in study.untuned})
    write_json(study.grid_folder / TUNING_FILE, entries)
    write_bytes(study.grid_folder / "tuning.md", tuning_markdown(entries).encode())


def tuning_markdown(entries: dict) -> str:
    """tuning.md: the section the grid's report shows, on its own."""
    return to_markdown(tuning_blocks(entries))


def run_study(study: TunedStudy) -> list[str]:
    """Both stages; the methods with a failed grid job (the report lists the jobs)."""
    for method in study.tuned:
        search(study, method)
    recipes = [best_recipe(study, method) for method in study.tuned]
    record(study, recipes)
    return grid(study, recipes)
