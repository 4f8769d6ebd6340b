"""Image files decoded once with OpenCV, resized to a square, and cached as one uint8 array.

The cache is an `.npz` in `<root>/.medssl-cache/`, keyed by the image size and channels and
tagged with a fingerprint of the file list (relative paths, byte sizes, modification times)
plus whatever else defines the dataset (the CSV's text). A second run with the same files
reads the array back without decoding anything; a changed, added or removed file rebuilds it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from medssl.errors import MedsslError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
CACHE_DIR = ".medssl-cache"


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


def decode_image(path: Path, size: int, channels: int) -> np.ndarray:
    """uint8 `(channels, size, size)`: the shorter side resized to `size`, then a centre crop."""
    flag = cv2.IMREAD_GRAYSCALE if channels == 1 else cv2.IMREAD_COLOR
    image = cv2.imread(str(path), flag)
    if image is None:
        raise MedsslError(f"{path} could not be read as an image; delete or replace it.")
    h, w = image.shape[:2]
    scale = size / min(h, w)
    new_w, new_h = max(size, round(w * scale)), max(size, round(h * scale))
    # INTER_AREA averages when shrinking (no aliasing); bilinear when enlarging.
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    image = cv2.resize(image, (new_w, new_h), interpolation=interpolation)
    top, left = (new_h - size) // 2, (new_w - size) // 2
    image = image[top : top + size, left : left + size]
    if channels == 1:
        return image[None]
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB).transpose(2, 0, 1)


def decode_images(paths: Sequence[Path], size: int, channels: int) -> np.ndarray:
    """All `paths` as one uint8 `(N, channels, size, size)` array, decoded on a thread pool
    (OpenCV releases the GIL while it decodes)."""
    out = np.empty((len(paths), channels, size, size), dtype=np.uint8)
    workers = min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for i, image in enumerate(pool.map(lambda p: decode_image(p, size, channels), paths)):
            out[i] = image
    return out


def fingerprint(
    paths: Sequence[Path], root: Path, size: int, channels: int, extra: str = ""
) -> str:
    digest = hashlib.sha256(f"{size}|{channels}|{extra}".encode())
    for path in paths:
        stat = path.stat()
        digest.update(f"{path.relative_to(root)}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def load_images_cached(
    paths: Sequence[Path],
    root: Path,
    size: int,
    channels: int,
    *,
    kind: str,
    extra: str = "",
    cache: bool = True,
) -> np.ndarray:
    """`decode_images(paths, ...)` through the cache file `<root>/.medssl-cache/<kind>-...npz`."""
    check_channels(channels)
    if not cache:
        return decode_images(paths, size, channels)
    path = root / CACHE_DIR / f"{kind}-{size}px-{channels}ch.npz"
    key = fingerprint(paths, root, size, channels, extra)
    if path.exists():
        try:
            with np.load(path) as stored:
                if str(stored["fingerprint"]) == key:
                    log.info("Read %d cached images from %s", len(paths), path)
                    return stored["images"]
        except (OSError, ValueError, KeyError, EOFError) as error:
            log.warning("Ignoring unreadable image cache %s (%s)", path, type(error).__name__)
        log.info("Image files changed since %s was written; decoding again", path)
    images = decode_images(paths, size, channels)
    try:
        _write_cache(path, images, key)
        log.info("Decoded %d images and cached them in %s", len(paths), path)
    except OSError as error:
        log.warning(
            "Could not write the image cache %s (%s); the next run decodes again", path, error
        )
    return images


def _write_cache(path: Path, images: np.ndarray, key: str) -> None:
    # Written beside the target and renamed over it, so a killed run leaves no torn cache.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, images=images, fingerprint=np.array(key))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
