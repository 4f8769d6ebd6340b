"""One checkpoint per epoch, written atomically, and automatic resume from it.

Checkpoints hold only tensors and plain containers, so they load with `weights_only=True`: a
file someone sent you cannot run code. The `fingerprint` is what the run's training depends
on (a plain dict of config values, or any string); a checkpoint of another one is refused with
the keys that differ.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from medssl.atomic_files import save_torch
from medssl.errors import MedsslError

log = logging.getLogger(__name__)


def save_checkpoint(path: Path, *, state: dict, fingerprint: dict | str) -> None:
    save_torch(path, {**state, "fingerprint": fingerprint})


def load_checkpoint(path: Path, fingerprint: dict | str) -> dict | None:
    """The saved state, or None when there is none; refuses a checkpoint of another config."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a torn, foreign or code-carrying file: say which and stop
        raise MedsslError(
            f"cannot read checkpoint {path} ({type(error).__name__}: it is truncated, corrupt "
            f"or not a medssl checkpoint); delete it to start over."
        ) from None
    stored = state.get("fingerprint") if isinstance(state, dict) else None
    if stored != fingerprint:
        raise MedsslError(
            f"{path} was written by a run with different {', '.join(differing_keys(stored, fingerprint))}; "
            f"resume with the same overrides or point hydra.run.dir at a new folder."
        )
    inside = f", {state['step']} steps into epoch {state['epoch'] + 1}" if state.get("step") else ""
    log.info("Resuming from %s (epoch %d done%s)", path, state["epoch"], inside)
    return state


def differing_keys(a, b, prefix: str = "") -> list[str]:
    """Dotted names of the values that differ between two nested dicts (at most 8 listed)."""
    if not (isinstance(a, dict) and isinstance(b, dict)):
        return [prefix.rstrip(".") or "configuration"]
    keys = []
    for key in sorted(set(a) | set(b), key=str):
        if a.get(key) != b.get(key):
            keys += differing_keys(a.get(key), b.get(key), f"{prefix}{key}.")
    return keys[:8] + (["..."] if len(keys) > 8 else [])
