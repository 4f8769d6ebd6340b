"""One job of a sweep: skipped when its results are complete, alone in its folder, and never
the end of the sweep when it fails.

`run_job` wraps the run. A job whose `results.json` was written by the same configuration is
skipped (`skip_done`), so starting a study's command again continues it; a folder another
process is working in (a second launch of the same study) is left alone; a failure (a user
error, a NaN loss, any exception) is written to `error.json` with its one-line message, and in a
multirun the other jobs go on: the sweep's end counts the failures (`sweep_summary.py`). A
single run still stops with the message and exit status 1.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import traceback
from pathlib import Path

from filelock import FileLock, Timeout
from omegaconf import DictConfig, OmegaConf

from medssl.atomic_files import write_json
from medssl.errors import MedsslError
from medssl.training.stop_signals import RunStopped

log = logging.getLogger("medssl")

# Keys that change where or how a run logs, never what it measures.
NOT_SHAPING = ("cache", "skip_done", "logger")


def config_hash(cfg: DictConfig) -> str:
    container = OmegaConf.to_container(cfg, resolve=True)
    shaping = {k: v for k, v in container.items() if k not in NOT_SHAPING}
    text = json.dumps(shaping, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def identity(cfg: DictConfig, choices: dict[str, str] | None) -> dict:
    """What places a job in the study's tables: its config choices, fraction and seeds."""
    return {
        **{f"config/{group}": str(option) for group, option in (choices or {}).items()},
        "label_frac": cfg.label_frac,
        "seed": cfg.seed,
        "label_seed": cfg.label_seed,
        "run/config_hash": _config_hash_or_none(cfg),
    }


def _config_hash_or_none(cfg: DictConfig) -> str | None:
    try:  # a failure report must not fail on the config that caused it
        return config_hash(cfg)
    except Exception:
        return None


def completed_results(run_dir: Path, cfg: DictConfig) -> dict | None:
    """The results a previous job with this configuration finished in `run_dir`, if any."""
    path = Path(run_dir) / "results.json"
    try:
        results = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if results.get("run/config_hash") != config_hash(cfg):
        log.warning("%s is from another configuration; running the job again", path)
        return None
    return results


def run_job(task, cfg: DictConfig, run_dir: Path, **kwargs) -> dict | None:
    """`task(cfg, run_dir, choices)`'s results, the stored ones of a finished job, or None
    when the job failed (multirun) or runs elsewhere. A run stopped by a signal (it wrote a
    checkpoint to resume from) ends the process with the signal's exit status, sweep or not."""
    try:
        return _guarded_job(task, cfg, run_dir, **kwargs)
    except RunStopped as stopped:
        log.warning("The run %s", stopped)
        raise SystemExit(stopped.exit_status) from None


def _guarded_job(
    task,
    cfg: DictConfig,
    run_dir: Path,
    *,
    choices: dict[str, str] | None = None,
    multirun: bool = False,
    rank: int = 0,
) -> dict | None:
    run_dir = Path(run_dir)
    if cfg.skip_done:
        done = completed_results(run_dir, cfg)
        if done is not None:
            log.info(
                "Skipping %s: its results.json is complete (skip_done=false reruns it)", run_dir
            )
            return done
    if rank != 0:  # one process per job keeps the books; the others only train
        return task(cfg, run_dir, choices)
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(run_dir / ".job.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log.warning("Skipping %s: another process is running this job", run_dir)
        return None
    try:
        (run_dir / "error.json").unlink(missing_ok=True)
        OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
        return task(cfg, run_dir, choices)
    except RunStopped:
        raise
    except Exception as error:
        record_failure(run_dir, cfg, choices, error)
        if not multirun:
            if isinstance(error, MedsslError):
                sys.exit(1)
            raise
        return None
    finally:
        lock.release()


def record_failure(run_dir: Path, cfg: DictConfig, choices, error: Exception) -> None:
    user_error = isinstance(error, MedsslError)
    message = str(error) if user_error else f"{type(error).__name__}: {error}"
    if user_error:
        log.error("%s", message)
    else:
        log.exception("The job failed: %s", message)
    write_json(
        run_dir / "error.json",
        {
            **identity(cfg, choices),
            "error": message,
            "error_type": type(error).__name__,
            "traceback": None if user_error else traceback.format_exc(),
        },
    )
    log.error("Job failed; wrote %s", run_dir / "error.json")
