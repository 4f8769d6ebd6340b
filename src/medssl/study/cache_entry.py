"""One entry of the encoder cache: the folder `<cache dir>/<key>/` and its files.

An entry holds encoder.pt (the encoder, and a classifier head where the method has one),
train_log.jsonl (the epoch log) and pretraining.json, written last so that its presence marks
the entry complete. A file lock in the folder lets one job pretrain into it while others that
need the same encoder wait; a finished entry is hard-linked into each job's run folder.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from pathlib import Path

import torch
from filelock import FileLock, Timeout

from medssl.atomic_files import save_torch, write_bytes, write_json
from medssl.errors import MedsslError

log = logging.getLogger(__name__)


class CacheEntry:
    """`<cache dir>/<key>/`: encoder.pt, train_log.jsonl, pretraining.json (written last)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.encoder = self.folder / "encoder.pt"
        self.meta_path = self.folder / "pretraining.json"
        self.log_path = self.folder / "train_log.jsonl"

    def complete(self) -> bool:
        return self.meta_path.is_file() and self.encoder.is_file()

    @contextlib.contextmanager
    def lock(self, held_here: bool, key: str):
        """The key's lock, taken by the main process only; waits while another job trains."""
        if not held_here:
            yield
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.folder / ".lock"))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            log.info(
                "Waiting for encoder %s: another job is pretraining it (%s)", key, lock.lock_file
            )
            lock.acquire()
        try:
            yield
        finally:
            lock.release()

    def load_into(self, method) -> None:
        """The stored encoder (and classifier head) into `method`."""
        try:
            saved = torch.load(self.encoder, map_location="cpu", weights_only=True)
            method.load_saved_state(saved)
        except Exception as error:  # torn, foreign or mismatched file: say which and stop
            raise MedsslError(
                f"the cached encoder {self.encoder} cannot be used ({type(error).__name__}); "
                f"delete {self.folder} to pretrain it again."
            ) from None

    def store(self, record: dict, meta: dict) -> None:
        save_torch(self.encoder, record)
        write_json(self.meta_path, meta)
        # The resume point is no longer needed once the encoder is stored.
        shutil.rmtree(self.folder / "checkpoints", ignore_errors=True)

    def meta(self) -> dict:
        return json.loads(self.meta_path.read_text())

    def history(self) -> list[dict]:
        if not self.log_path.is_file():
            return []
        return [json.loads(line) for line in self.log_path.read_text().splitlines() if line]

    def copy_into(self, run_dir: Path) -> Path:
        """Hard-link the encoder into the run folder (a copy across filesystems) and copy the
        epoch log, so each job folder stands on its own."""
        target = Path(run_dir) / "encoder.pt"
        tmp = target.with_name(f".{target.name}.link.tmp")
        tmp.unlink(missing_ok=True)
        try:
            os.link(self.encoder, tmp)
        except OSError:
            shutil.copyfile(self.encoder, tmp)
        os.replace(tmp, target)
        if self.log_path.is_file():
            write_bytes(Path(run_dir) / "train_log.jsonl", self.log_path.read_bytes())
        return target
