"""One job of a sweep: skipped when its results are complete, alone in its folder, never
writing over another configuration's record, and never the end of the sweep when it fails.

`run_job` wraps the run. A job whose `results.json` was written by the same configuration is
skipped (`skip_done`), so starting a study's command again continues it; a folder another
process is working in (a second launch of the same study) is left alone; a failure (a user
error, a NaN loss, any exception) is written to `error.json` with its one-line message, and in a
multirun the other jobs go on: the sweep's end counts the failures (`sweep_summary.py`). A
single run still stops with the message and exit status 1.

A folder's record of what it holds (`results.json`, `config.yaml`, `labelled_indices.json`, the
encoder) belongs to the configuration that wrote it (run_record.py says which that is). A job of another configuration is refused,
before it writes anything, where the folder holds finished results (`refusal`); where it fails
in a folder another configuration started (a checkpoint it could not resume) it leaves the
folder as it found it; and a failed rerun of finished results (skip_done=false) writes no
error.json that would hide them. A multirun notes such a failure in the hidden
`.failed_attempt.json`, which the sweep's end counts and the report never reads.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from pathlib import Path

from filelock import FileLock, Timeout
from omegaconf import DictConfig

from medssl.atomic_files import FULL, unwritable, write_bytes, write_json
from medssl.errors import MedsslError
from medssl.study.run_record import (
    config_hash,
    finished_by,
    identity,
    read_results,
    results_refusal,
    save_config,
    stored_config,
)
from medssl.training.stop_signals import RunStopped

log = logging.getLogger("medssl")

# What a job writes about itself before it knows whether it will finish.
RECORD_FILES = ("config.yaml", "labelled_indices.json")
# A failed attempt that must not touch the record (a refused configuration, a failed rerun of
# finished results): the sweep's end counts it, the report never reads it.
FAILED_ATTEMPT = ".failed_attempt.json"


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
    results = read_results(run_dir)
    finished = finished_by(results, cfg, run_dir)
    if finished:
        if cfg.skip_done:
            return _skip(run_dir, cfg, results, rank)
    else:
        refused = results_refusal(run_dir, cfg, results)
        if refused is not None:
            return _refuse(run_dir, cfg, choices, MedsslError(refused), multirun, rank)
    if rank != 0:  # one process per job keeps the books; the others only train
        return task(cfg, run_dir, choices)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:  # a path through a file, a read-only or full disk
        return _refuse(run_dir, cfg, choices, unwritable(run_dir, error), multirun, rank)
    lock = FileLock(str(run_dir / ".job.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log.warning("Skipping %s: another process is running this job", run_dir)
        return None
    try:
        return _locked_job(task, cfg, run_dir, choices, multirun, finished)
    finally:
        lock.release()


def skip_if_done(run_dir: Path, cfg: DictConfig) -> dict | None:
    """The results `cfg` finished in `run_dir` when skip_done skips the job (logged, and the
    folder's stale records of refused jobs cleared), else None."""
    results = read_results(run_dir, quiet=True)  # an unreadable one: the job says why
    if not cfg.skip_done or not finished_by(results, cfg, run_dir):
        return None
    return _skip(Path(run_dir), cfg, results, rank=0)


def _skip(run_dir: Path, cfg: DictConfig, results: dict, rank: int) -> dict:
    log.info("Skipping %s: its results.json is complete (skip_done=false reruns it)", run_dir)
    if rank == 0:
        _clear_refused_records(run_dir, cfg)
    return results


def _locked_job(
    task, cfg: DictConfig, run_dir: Path, choices, multirun: bool, finished: bool
) -> dict | None:
    """`finished`: the folder holds this configuration's results (skip_done=false reruns it);
    a failed rerun must not hide them behind an error.json."""
    # Another configuration's config.yaml: an unfinished run (its checkpoint) owns the folder.
    stored = stored_config(run_dir / "config.yaml")
    guest = stored is not None and config_hash(stored) != config_hash(cfg)
    found = {name: _read_or_none(run_dir / name) for name in RECORD_FILES} if guest else {}
    try:
        save_config(cfg, run_dir / "config.yaml")
        results = task(cfg, run_dir, choices)
    except RunStopped:
        raise
    except Exception as error:
        if isinstance(error, OSError) and error.errno in FULL:  # a figure or log on a full disk
            error = unwritable(Path(error.filename or run_dir), error)
        if guest:
            _put_back(run_dir, found)
        if guest or finished:
            return _refuse(run_dir, cfg, choices, error, multirun, rank=0)
        record_failure(run_dir, cfg, choices, error)
        if not multirun:
            if isinstance(error, MedsslError):
                sys.exit(1)
            raise
        return None
    (run_dir / "error.json").unlink(missing_ok=True)
    (run_dir / FAILED_ATTEMPT).unlink(missing_ok=True)
    return results


def _refuse(run_dir: Path, cfg, choices, error: Exception, multirun: bool, rank: int):
    """A job that must not touch `run_dir`'s record: the sentence, then exit status 1 for a
    single run; a multirun goes on, with the failure in FAILED_ATTEMPT for its end to count."""
    if isinstance(error, MedsslError):
        log.error("%s", error)
    else:
        log.exception("The job failed: %s: %s", type(error).__name__, error)
    if not multirun:
        if isinstance(error, MedsslError):
            sys.exit(1)
        raise error
    if rank == 0:
        _write_failure(run_dir / FAILED_ATTEMPT, cfg, choices, error)
    return None


def _read_or_none(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _put_back(run_dir: Path, found: dict[str, bytes | None]) -> None:
    for name, data in found.items():
        try:
            if data is None:
                (run_dir / name).unlink(missing_ok=True)
            else:
                write_bytes(run_dir / name, data)
        except (OSError, MedsslError) as error:
            log.error("Could not put back %s: %s", run_dir / name, error)


def _clear_refused_records(run_dir: Path, cfg: DictConfig) -> None:
    """A finished folder that an older medssl let a refused job write into gets its own
    config.yaml back, and loses that job's error.json, which would count it as failed."""
    finished = config_hash(cfg)
    stored = stored_config(run_dir / "config.yaml")
    if stored is None or config_hash(stored) != finished:
        try:
            save_config(cfg, run_dir / "config.yaml")
            log.warning("Restored %s: it was another configuration's", run_dir / "config.yaml")
        except MedsslError as error:  # a full disk; the results themselves are intact
            log.warning("%s", error)
    error_file = run_dir / "error.json"
    if error_file.exists():
        try:
            failed = json.loads(error_file.read_bytes()).get("run/config_hash")
        except (OSError, ValueError, AttributeError):
            failed = None
        if failed != finished:
            error_file.unlink(missing_ok=True)
            log.warning("Removed %s: another configuration's failure", error_file)
    (run_dir / FAILED_ATTEMPT).unlink(missing_ok=True)


def record_failure(run_dir: Path, cfg: DictConfig, choices, error: Exception) -> None:
    user_error = isinstance(error, MedsslError)
    message = str(error) if user_error else f"{type(error).__name__}: {error}"
    if user_error:
        log.error("%s", message)
    else:
        log.exception("The job failed: %s", message)
    if _write_failure(run_dir / "error.json", cfg, choices, error):
        log.error("Job failed; wrote %s", run_dir / "error.json")


def _write_failure(path: Path, cfg: DictConfig, choices, error: Exception) -> bool:
    user_error = isinstance(error, MedsslError)
    try:
        write_json(
            path,
            {
                **identity(cfg, choices),
                "error": str(error) if user_error else f"{type(error).__name__}: {error}",
                "error_type": type(error).__name__,
                "traceback": None if user_error else traceback.format_exc(),
            },
        )
    except (OSError, MedsslError) as write_error:  # a full disk: the sentence is already out
        log.error("Could not write %s either: %s", path, write_error)
        return False
    return True
