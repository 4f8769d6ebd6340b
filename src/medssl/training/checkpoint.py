"""One checkpoint per epoch, written atomically, and automatic resume from it."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from medssl.atomic_files import save_torch
from medssl.errors import MedsslError

log = logging.getLogger(__name__)


def save_checkpoint(path: Path, *, state: dict, fingerprint: str) -> None:
    save_torch(path, {**state, "fingerprint": fingerprint})


def load_checkpoint(path: Path, fingerprint: str) -> dict | None:
    """The saved state, or None when there is none; refuses a checkpoint of another config."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # a torn or foreign file: say which and stop
        raise MedsslError(
            f"cannot read checkpoint {path} ({type(error).__name__}); delete it to start over."
        ) from None
    if state.get("fingerprint") != fingerprint:
        raise MedsslError(
            f"{path} was written by a run with a different configuration; resume with the same "
            f"overrides or point hydra.run.dir at a new folder."
        )
    log.info("Resuming from %s (epoch %d done)", path, state["epoch"])
    return state
