"""The end of a sweep: how many jobs finished, which failed and where, and the exit status.

A Hydra callback (configured under `hydra.callbacks` in conf/config.yaml). Jobs never raise
out of `run_job`, so every launcher runs the whole grid; this callback then reads the sweep
folder, lists the `error.json` files written since the sweep started (and the
`.failed_attempt.json` of jobs that failed where they must not touch a folder's record), and
exits with status 1 when there are any, so a script or CI sees that the study is incomplete.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from medssl.study.job import FAILED_ATTEMPT

log = logging.getLogger("medssl")


def _job_files(sweep_dir: Path, name: str) -> list[Path]:
    return sorted(
        p
        for p in sweep_dir.rglob(name)
        if not any(part.startswith(".") for part in p.relative_to(sweep_dir).parts[:-1])
    )


def _message(error_file: Path) -> str:
    try:
        return json.loads(error_file.read_text()).get("error", "?")
    except (OSError, json.JSONDecodeError):
        return "(error.json unreadable)"


class SweepSummary(Callback):
    def __init__(self) -> None:
        self.started = time.time()

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        self.started = time.time()

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        finished = _job_files(sweep_dir, "results.json")
        failed = [
            p
            for name in ("error.json", FAILED_ATTEMPT)
            for p in _job_files(sweep_dir, name)
            if p.stat().st_mtime >= self.started
        ]
        log.info("Sweep %s: %d jobs have results", sweep_dir, len(finished))
        if failed:
            log.error("%d job(s) failed:", len(failed))
            for path in failed:
                log.error("  %s: %s", path.parent, _message(path))
        log.info("Report: make report SWEEP=%s", sweep_dir)
        if failed:
            sys.exit(1)
