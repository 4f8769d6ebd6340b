"""The jobs of a sweep as `Run`s: what each job folder says it measured, or why it failed.

A job folder holds `results.json` (finished) or `error.json` (failed), next to the resolved
`config.yaml` of the job. When a rerun left both behind, the newer file is the job's outcome.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from omegaconf import OmegaConf

from medssl.config_roles import BOOKKEEPING_CHOICES, shapes_results
from medssl.errors import MedsslError

log = logging.getLogger(__name__)

# Before `config/<group>` keys existed, results.json named these choices at the top level.
OLD_CHOICE_KEYS = ("method", "backbone", "dataset")


@dataclass(eq=False)
class Run:
    """One job: `record` is its results.json (finished) or error.json (failed)."""

    folder: str  # relative to the sweep folder, "." for the sweep folder itself
    status: str  # "finished" or "failed"
    record: dict
    config: dict | None = field(default=None)  # nested config.yaml, None when it is missing
    overrides: tuple[str, ...] = ()  # the command line's `key=value`s (.hydra/overrides.yaml)

    @property
    def finished(self) -> bool:
        return self.status == "finished"

    @cached_property
    def choices(self) -> dict[str, str]:
        """The config group options (`config/<group>`), the ones that shape results."""
        choices = {
            key.removeprefix("config/"): str(value)
            for key, value in self.record.items()
            if key.startswith("config/") and _shaping_choice(key.removeprefix("config/"))
        }
        if not choices:
            choices = {k: str(self.record[k]) for k in OLD_CHOICE_KEYS if k in self.record}
        return choices

    @property
    def dataset(self) -> str:
        return self.choices.get("dataset", "unknown dataset")

    @property
    def method(self) -> str:
        return self.choices.get("method", "unknown method")

    @property
    def label_frac(self) -> float:
        return float(self.record.get("label_frac", 1.0))

    @property
    def seed(self) -> int | None:
        return self.record.get("seed")

    @property
    def seeds(self) -> tuple:
        """Model seed and label seed: two runs with the same pair saw the same labelled images."""
        return (self.record.get("seed"), self.record.get("label_seed", self.record.get("seed")))

    @property
    def error(self) -> str:
        return "" if self.finished else str(self.record.get("error", "unknown error"))

    def value(self, metric: str) -> float | None:
        """The metric of a finished run, None where it failed or the metric is undefined."""
        value = self.record.get(metric) if self.finished else None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        if not math.isfinite(value):
            return None
        return float(value)


def _shaping_choice(group: str) -> bool:
    """A group choice that shapes results (not `logger`, `local`, a launcher: ROLES)."""
    return group not in BOOKKEEPING_CHOICES and shapes_results(group.replace("/", "."))


def collect_runs(folder: Path) -> list[Run]:
    folder = Path(folder)
    if not folder.is_dir():
        raise MedsslError(f"{folder} is not a folder; point the report at a run or sweep folder.")
    runs = [run for job in _job_folders(folder) if (run := _read_job(folder, job)) is not None]
    if not runs:
        raise MedsslError(
            f"no results.json under {folder}; point the report at a run or sweep folder."
        )
    return runs


def _job_folders(folder: Path) -> list[Path]:
    jobs = []
    for root, dirs, files in os.walk(folder):
        # Encoder caches, submitit logs and W&B mirrors hold no job of their own.
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "wandb")
        if "results.json" in files or "error.json" in files:
            jobs.append(Path(root))
    return jobs


def _outcome_file(job: Path) -> tuple[Path, str]:
    results, error = job / "results.json", job / "error.json"
    if not error.exists():
        return results, "finished"
    if not results.exists() or error.stat().st_mtime >= results.stat().st_mtime:
        return error, "failed"
    return results, "finished"


def _read_job(sweep: Path, job: Path) -> Run | None:
    path, status = _outcome_file(job)
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        log.warning("Skipping unreadable %s", path)
        return None
    if not isinstance(record, dict):
        log.warning("Skipping %s: it is not a JSON object", path)
        return None
    return Run(
        job.relative_to(sweep).as_posix(), status, record, _read_config(job), _read_overrides(job)
    )


def _read_overrides(job: Path) -> tuple[str, ...]:
    path = job / ".hydra" / "overrides.yaml"
    try:
        overrides = OmegaConf.to_container(OmegaConf.load(path)) if path.exists() else []
    except Exception as error:  # only the report's naming reads them
        log.warning("Ignoring unreadable %s: %s", path, error)
        return ()
    return tuple(str(o) for o in overrides) if isinstance(overrides, list) else ()


def _read_config(job: Path) -> dict | None:
    path = job / "config.yaml"
    if not path.exists():
        return None
    try:
        # OmegaConf's own loader, so `1e-3` reads back as the float it saved.
        return OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    except Exception as error:  # a broken config must not hide the run's numbers
        log.warning("Ignoring unreadable %s: %s", path, error)
        return None
