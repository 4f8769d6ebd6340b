"""Write files so that a crash never leaves a half-written checkpoint or result.

Every writer goes to a temporary file in the same folder and renames it over the target:
a rename within one filesystem is atomic, so readers see the old file or the new one. A write
that fails for want of space or permission leaves the old file and raises a MedsslError that
names the file, so a full disk reads as one sentence, not as torch's `unexpected pos`.
"""

from __future__ import annotations

import errno
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from medssl.errors import MedsslError

# The process umask, for the mode of renamed files (reading it means setting it, so set it back).
_UMASK = os.umask(0)
os.umask(_UMASK)


# Below this many free bytes at the moment a write failed, the disk was full (torch reports
# a short write as a RuntimeError without the errno).
FULL_BELOW_BYTES = 1 << 20
FULL = (errno.ENOSPC, errno.EDQUOT)


def _replace_atomically(path: Path, write) -> None:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise unwritable(path, error) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp makes the file private; results are for colleagues on the cluster too.
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException as error:
        # Measured before the partial file is removed, which frees its space again.
        full = isinstance(error, RuntimeError) and _free_bytes(path.parent) < FULL_BELOW_BYTES
        Path(tmp).unlink(missing_ok=True)
        if isinstance(error, OSError) or full:
            raise unwritable(path, error, full=full) from None
        raise


def unwritable(path: Path, error: BaseException, full: bool = False) -> MedsslError:
    """The sentence for a file (or folder) that could not be written."""
    if full or getattr(error, "errno", None) in FULL:
        return MedsslError(
            f"could not write {path}: the disk is full; free some space or write elsewhere "
            f"(hydra.run.dir, cache.dir)."
        )
    if getattr(error, "errno", None) in (errno.ENOTDIR, errno.EEXIST):
        file = next((p for p in Path(path).parents if p.is_file()), None)
        if file is not None:
            return MedsslError(f"could not write {path}: {file} is a file, not a folder.")
    reason = getattr(error, "strerror", None) or str(error).splitlines()[0]
    return MedsslError(f"could not write {path}: {reason}.")


def _free_bytes(folder: Path) -> int:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return FULL_BELOW_BYTES


def write_bytes(path: Path, data: bytes) -> None:
    _replace_atomically(path, lambda f: f.write(data))


def write_json(path: Path, data: Any) -> None:
    """Strict JSON: an undefined number (NaN, inf) is written as null, which every parser reads."""
    text = json.dumps(_strict(data), indent=2, sort_keys=True, allow_nan=False) + "\n"
    _replace_atomically(path, lambda f: f.write(text.encode()))


def save_torch(path: Path, obj: Any) -> None:
    import torch  # here, so the CLIs can refuse bad input before torch has loaded

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
