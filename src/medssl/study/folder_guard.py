"""The output folder checked before Hydra writes into it.

Hydra writes `.hydra/` and opens the run's log inside the output folder before the task runs,
so a run that is refused later has already touched a finished folder, and a folder path that
runs through a regular file ends in a `NotADirectoryError` traceback. This callback (listed
under `hydra.callbacks` by the CLIs' primary configs) runs first: a single run refused by the
`refusal` function (default `study.run_record.refusal`, a finished result of another
configuration) or aimed at an unusable folder stops with one sentence and exit status 1,
having written nothing; one whose results are complete (`skip_done`) ends at once, as
`run_job` would skip it, without torch ever loading. A multirun's jobs are checked by
`run_job`, since Hydra calls no hook before each.
"""

from __future__ import annotations

import copy
import logging
import os
import shutil
import sys
from pathlib import Path

from hydra.experimental.callback import Callback
from hydra.utils import get_method
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from medssl.atomic_files import FULL_BELOW_BYTES

log = logging.getLogger("medssl")


class FolderGuard(Callback):
    """`refusal(folder, cfg)`: the sentence refusing `cfg` in `folder`, or None; `skip(folder,
    cfg)`: the results that make the run unnecessary, or None (null: never skipped)."""

    def __init__(
        self,
        refusal: str = "medssl.study.run_record.refusal",
        skip: str | None = "medssl.study.job.skip_if_done",
    ) -> None:
        self.refusal = refusal
        self.skip = skip

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        folder = _folder(config, "hydra.run.dir")
        if folder is None:
            return
        _stop_on(unusable_folder(folder, "hydra.run.dir"))
        task = task_config(config)
        # A finished run is left alone before Hydra rewrites its .hydra/ and log.
        if self.skip is not None and get_method(self.skip)(folder, task) is not None:
            sys.exit(0)
        _stop_on(get_method(self.refusal)(folder, task))

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        folder = _folder(config, "hydra.sweep.dir")
        if folder is not None:
            _stop_on(unusable_folder(folder, "hydra.sweep.dir"))


def task_config(config: DictConfig) -> DictConfig:
    """The config the task receives: Hydra's without its `hydra` node."""
    task = copy.deepcopy(config)
    with read_write(task), open_dict(task):
        del task["hydra"]
    return task


def unusable_folder(folder: Path, key: str) -> str | None:
    """Why `folder` cannot be created or written, or None."""
    for existing in (folder, *folder.parents):
        if not existing.exists():
            continue
        if not existing.is_dir():
            return f"{key}={folder} cannot be created: {existing} is a file, not a folder."
        if not os.access(existing, os.W_OK | os.X_OK):
            return f"{key}={folder} cannot be written: {existing} is not writable."
        # Hydra's own first writes (.hydra/, the log) would fail with a traceback.
        if shutil.disk_usage(existing).free < FULL_BELOW_BYTES:
            return f"{key}={folder} cannot be written: the disk holding {existing} is full."
        return None
    return None


def _folder(config: DictConfig, key: str) -> Path | None:
    try:
        return Path(str(OmegaConf.select(config, key)))
    except Exception:  # an interpolation only a job can resolve: Hydra reports it itself
        return None


def _stop_on(sentence: str | None) -> None:
    if sentence:
        log.error("%s", sentence)
        sys.exit(1)
