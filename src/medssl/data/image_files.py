"""Image files listed by a loader, decoded once into the on-disk image store (`image_store`).

The store lives in `<root>/.medssl-cache/` (or `dataset.store_dir`), keyed by the image size,
channels and dtype and by a fingerprint of the file list in split order (relative paths, byte
sizes, modification times) plus whatever else defines the dataset (the CSV's text). A second
run with the same files opens the store without decoding anything; a changed, added or removed
file builds a new one. `cache: false` decodes into memory instead (small sets, no disk).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from medssl.data.decode import IMAGE_SUFFIXES, decode_image, source_dtype
from medssl.data.image_store import (
    CACHE_DIR,
    StoreSpec,
    decode_into,
    stored_splits,
    writable_store_dir,
)
from medssl.errors import MedsslError

log = logging.getLogger(__name__)

DTYPES = {"uint8": np.uint8, "uint16": np.uint16}


def is_image(path: Path) -> bool:
    return (
        path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")
    )


def list_images(folder: Path, recursive: bool = False) -> list[Path]:
    """Image files in `folder` (and its subfolders when `recursive`), sorted, cache excluded."""
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in found if CACHE_DIR not in p.parts and is_image(p))


def check_channels(channels: int) -> int:
    if channels not in (1, 3):
        raise MedsslError(f"dataset.channels must be 1 (grayscale) or 3 (RGB), got {channels}.")
    return channels


def resolve_dtype(dtype: str, first_image: Path) -> np.dtype:
    """`dataset.dtype`: uint8, uint16, or auto (uint16 when the first image holds more than
    8 bits, as 16-bit PNG/TIFF and most DICOM do)."""
    if dtype == "auto":
        return np.dtype(source_dtype(first_image))
    if dtype not in DTYPES:
        raise MedsslError(f"dataset.dtype must be auto, uint8 or uint16, got {dtype!r}.")
    return np.dtype(DTYPES[dtype])


def fingerprint(
    paths: Sequence[Path], root: Path, size: int, channels: int, extra: str = ""
) -> str:
    digest = hashlib.sha256(f"{size}|{channels}|{extra}".encode())
    for path in paths:
        stat = path.stat()
        digest.update(f"{path.relative_to(root)}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _pool() -> ThreadPoolExecutor:
    # OpenCV and pydicom's decoders release the GIL for most of their work.
    return ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1))


def load_split_images(
    paths: dict[str, Sequence[Path]],
    root: Path,
    size: int,
    channels: int,
    *,
    dtype: str = "auto",
    kind: str,
    extra: str = "",
    cache: bool = True,
    store_dir: str | None = None,
) -> tuple[dict[str, torch.Tensor], dict[str, str | None]]:
    """Each split's images `(N, channels, size, size)` and content digest: memory-mapped from
    the store (`cache`), else decoded into memory (digest None: computed when needed)."""
    check_channels(channels)
    every = [p for split_paths in paths.values() for p in split_paths]
    resolved = resolve_dtype(dtype, every[0])

    def decode(path: Path) -> np.ndarray:
        return decode_image(path, size, channels, resolved)

    spec = StoreSpec({s: len(p) for s, p in paths.items()}, channels, size, resolved)
    with _pool() as pool:
        if not cache:
            images = {}
            for split, split_paths in paths.items():
                out = np.empty((len(split_paths), channels, size, size), dtype=resolved)
                decode_into(split_paths, decode, pool)(out, 0)
                images[split] = torch.from_numpy(out)
            return images, dict.fromkeys(paths)
        folder = writable_store_dir(store_dir, root, str(root))
        counts = "|".join(f"{s}:{len(p)}" for s, p in paths.items())
        key = fingerprint(every, root, size, channels, f"{extra}|{resolved.name}|{counts}")
        fills = {s: decode_into(p, decode, pool) for s, p in paths.items()}
        return stored_splits(
            folder,
            f"{kind}-{size}px-{channels}ch-{resolved.name}",
            key,
            spec,
            str(root),
            lambda split, out, start: fills[split](out, start),
        )
