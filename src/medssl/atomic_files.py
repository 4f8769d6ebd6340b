"""Write files so that a crash never leaves a half-written checkpoint or result.

Every writer goes to a temporary file in the same folder and renames it over the target:
a rename within one filesystem is atomic, so readers see the old file or the new one.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

# The process umask, for the mode of renamed files (reading it means setting it, so set it back).
_UMASK = os.umask(0)
os.umask(_UMASK)


def _replace_atomically(path: Path, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp makes the file private; results are for colleagues on the cluster too.
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bytes(path: Path, data: bytes) -> None:
    _replace_atomically(path, lambda f: f.write(data))


def write_json(path: Path, data: Any) -> None:
    """Strict JSON: an undefined number (NaN, inf) is written as null, which every parser reads."""
    text = json.dumps(_strict(data), indent=2, sort_keys=True, allow_nan=False) + "\n"
    _replace_atomically(path, lambda f: f.write(text.encode()))


def save_torch(path: Path, obj: Any) -> None:
    _replace_atomically(path, lambda f: torch.save(obj, f))


def write_jsonl(path: Path, records: list[dict]) -> None:
    """Rewrite a JSON-lines log whole, so a resumed run never holds a duplicate or torn line."""
    text = "".join(json.dumps(_strict(r), allow_nan=False) + "\n" for r in records)
    _replace_atomically(path, lambda f: f.write(text.encode()))


def _strict(value: Any) -> Any:
    """`value` as plain JSON data: containers walked, tensors and arrays as lists, numpy and
    torch scalars as numbers, non-finite floats as None."""
    if isinstance(value, dict):
        return {str(k): _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return _strict(value.tolist())  # arrays, tensors and their scalars
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, int, bool)):
        return value
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
