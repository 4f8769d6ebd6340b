"""Write files so that a crash never leaves a half-written checkpoint or result.

Every writer goes to a temporary file in the same folder and renames it over the target:
a rename within one filesystem is atomic, so readers see the old file or the new one.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch


def _replace_atomically(path: Path, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bytes(path: Path, data: bytes) -> None:
    _replace_atomically(path, lambda f: f.write(data))


def write_json(path: Path, data: Any) -> None:
    text = json.dumps(data, indent=2, sort_keys=True, default=_json_default) + "\n"
    _replace_atomically(path, lambda f: f.write(text.encode()))


def save_torch(path: Path, obj: Any) -> None:
    _replace_atomically(path, lambda f: torch.save(obj, f))


def write_jsonl(path: Path, records: list[dict]) -> None:
    """Rewrite a JSON-lines log whole, so a resumed run never holds a duplicate or torn line."""
    text = "".join(json.dumps(r, default=_json_default) + "\n" for r in records)
    _replace_atomically(path, lambda f: f.write(text.encode()))


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
