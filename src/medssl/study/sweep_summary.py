"""The end of a sweep: how many jobs finished, which failed and where, and the exit status.

A Hydra callback (configured under `hydra.callbacks` in conf/config.yaml). Jobs never raise
out of `run_job`, so every launcher runs the whole grid; this callback then reads the sweep
folder, lists the `error.json` files written since the sweep started (and the
`.failed_attempt.json` of jobs that failed where they must not touch a folder's record), and
exits with status 1 when there are any, so a script or CI sees that the study is incomplete.
With `logger=wandb logger.report_at_end=true` it first writes the sweep report and logs it to
the sweep's W&B group (medssl.study.report.wandb_summary), once every job has ended.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from medssl.errors import MedsslError
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
        if finished:
            _report_to_wandb(config, sweep_dir)
        log.info("Report: make report SWEEP=%s", sweep_dir)
        if failed:
            sys.exit(1)


def _report_to_wandb(config: DictConfig, sweep_dir: Path) -> None:
    """The sweep report, written and logged to W&B, where the logger asks for it."""
    logger = config.get("logger")
    if not logger or not logger.get("report_at_end"):
        return
    from medssl.study.report import compose_report, save_report
    from medssl.study.report.wandb_summary import publish_report, report_tracker

    try:
        report = compose_report(sweep_dir)
        save_report(report)
        group = publish_report(report, report_tracker(logger))
    except (MedsslError, OSError) as error:  # the jobs' results stand; only the report is missing
        log.error("The sweep report was not logged to W&B: %s", error)
        return
    log.info("Sweep report logged to the W&B group %s", group)
