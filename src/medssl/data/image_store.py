"""Images decoded once into a memory-mapped store on disk: one `.npy` per split.

    <store dir>/<name>-<key>/manifest.json   what it holds: key, shape, dtype, per-split count and digest
    <store dir>/<name>-<key>/<split>.npy     (N, C, size, size) uint8 or uint16

`np.load(mmap_mode="c")` opens a split without reading it: pages come from the page cache,
which every process of a node shares and the kernel can reclaim, so a store far larger than
RAM trains (the batch feed gathers only each step's images). A build streams: images are
decoded in chunks on a thread pool and written into the memory map, so it needs the memory of
a chunk, not of the set. It is written under a temporary name and renamed when complete (the
manifest last), so a killed build is never taken for a finished one; a lock keeps two jobs from
building the same store at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from filelock import FileLock
from tqdm.auto import tqdm

from medssl.errors import MedsslError

log = logging.getLogger(__name__)

FORMAT = 1
CACHE_DIR = ".medssl-cache"  # the store folder beside the data when no store_dir is set
CHUNK_BYTES = 64 * 2**20  # decode and write this much at a time
# Room left on the disk beyond the store's own bytes (its manifest, the file system's slack).
DISK_MARGIN_BYTES = 16 * 2**20


@dataclass(frozen=True)
class StoreSpec:
    """What a store holds: `counts[split]` images of `(channels, size, size)` in `dtype`."""

    counts: dict[str, int]
    channels: int
    size: int
    dtype: np.dtype

    def nbytes(self, split: str | None = None) -> int:
        per_image = self.channels * self.size * self.size * np.dtype(self.dtype).itemsize
        n = sum(self.counts.values()) if split is None else self.counts[split]
        return n * per_image


def open_split(path: Path) -> torch.Tensor:
    """The split at `path` as a tensor over its memory map: nothing is read until indexed.
    Copy-on-write (`mmap_mode="c"`), so the tensor is writable without touching the file."""
    return torch.from_numpy(np.load(path, mmap_mode="c"))


def array_digest(array: np.ndarray, chunk: int = 4096) -> str:
    """Shape, dtype and a hash of the content, computed in chunks so that a memory-mapped
    array is hashed without being held in memory; a store's build computes the same value."""
    digest = hashlib.blake2b()
    for start in range(0, len(array), chunk):
        digest.update(np.ascontiguousarray(array[start : start + chunk]).data)
    return _digest_text(array.shape, array.dtype, digest)


def _digest_text(shape, dtype, digest) -> str:
    return f"{tuple(shape)}:{np.dtype(dtype).name}:" + digest.hexdigest()[:32]


class ImageStore:
    """One store folder; `open()` returns its splits, `build()` makes it."""

    def __init__(self, folder: Path, key: str, spec: StoreSpec, source: str) -> None:
        self.folder, self.key, self.spec, self.source = Path(folder), key, spec, source
        self.manifest_path = self.folder / "manifest.json"

    def complete(self) -> bool:
        try:
            manifest = json.loads(self.manifest_path.read_text())
        except (OSError, ValueError):
            return False
        return manifest.get("key") == self.key and manifest.get("format") == FORMAT

    def open(self) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
        """Every split as a memory-mapped tensor, and each split's content digest."""
        manifest = json.loads(self.manifest_path.read_text())
        images = {name: open_split(self.folder / f"{name}.npy") for name in self.spec.counts}
        digests = {name: manifest["splits"][name]["digest"] for name in self.spec.counts}
        return images, digests

    def build(self, fill: Callable[[str, np.ndarray, int], None]) -> None:
        """Write every split with `fill(split, out, start)`, which decodes the images
        `start : start + len(out)` of `split` into `out`; then rename into place."""
        self._check_disk()
        tmp = Path(tempfile.mkdtemp(dir=self.folder.parent, prefix=f".{self.folder.name}.tmp-"))
        try:
            splits = {name: self._write_split(tmp, name, fill) for name in self.spec.counts}
            manifest = {
                "format": FORMAT,
                "key": self.key,
                "source": self.source,
                "shape": [self.spec.channels, self.spec.size, self.spec.size],
                "dtype": np.dtype(self.spec.dtype).name,
                "splits": splits,
            }
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
            if self.folder.exists():  # an incomplete or outdated store of the same name
                shutil.rmtree(self.folder)
            os.replace(tmp, self.folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def _write_split(self, tmp: Path, name: str, fill) -> dict:
        spec = self.spec
        shape = (spec.counts[name], spec.channels, spec.size, spec.size)
        out = np.lib.format.open_memmap(
            tmp / f"{name}.npy", mode="w+", dtype=spec.dtype, shape=shape
        )
        per_image = max(1, spec.nbytes(name) // max(1, spec.counts[name]))
        chunk = max(1, CHUNK_BYTES // per_image)
        digest = hashlib.blake2b()
        with tqdm(total=shape[0], desc=f"store {name}", unit="img", leave=False) as bar:
            for start in range(0, shape[0], chunk):
                block = out[start : start + chunk]
                fill(name, block, start)
                digest.update(np.ascontiguousarray(block).data)
                bar.update(len(block))
        out.flush()
        del out
        return {"count": shape[0], "digest": _digest_text(shape, spec.dtype, digest)}

    def _check_disk(self) -> None:
        self.folder.parent.mkdir(parents=True, exist_ok=True)
        needed = self.spec.nbytes() + DISK_MARGIN_BYTES
        free = shutil.disk_usage(self.folder.parent).free
        if free < needed:
            raise MedsslError(
                f"the image store for {self.source} needs {_gb(needed)} in {self.folder.parent}, "
                f"but only {_gb(free)} is free; free space there or set dataset.store_dir to "
                f"another disk."
            )


def _gb(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


@contextlib.contextmanager
def store_lock(folder: Path) -> Iterator[None]:
    """Held while a store is checked and built, so parallel jobs build it once."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder.parent / f".{folder.name}.lock")):
        yield


def writable_store_dir(store_dir: str | Path | None, data_root: Path, what: str) -> Path:
    """Where the store of `what` goes: `store_dir` when set (one sentence when it cannot be
    written), else `<data_root>/.medssl-cache`, or the user's cache folder when the data
    folder is read-only (a shared archive)."""
    if store_dir is not None:
        folder = Path(store_dir).expanduser()
        error = _write_error(folder)
        if error:
            raise MedsslError(
                f"cannot write the image store of {what} in {folder} ({error}); set "
                f"dataset.store_dir to a writable folder."
            )
        return folder
    beside = Path(data_root) / CACHE_DIR
    if not _write_error(beside):
        return beside
    cache_home = Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser()
    fallback = cache_home / "medssl" / "stores"
    if _write_error(fallback):
        raise MedsslError(
            f"cannot write the image store of {what} beside it ({beside}) nor in {fallback}; "
            f"set dataset.store_dir to a writable folder."
        )
    log.info("%s is read-only: the image store of %s goes in %s", data_root, what, fallback)
    return fallback


def _write_error(folder: Path) -> str | None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-").close()
    except OSError as error:
        return error.strerror or type(error).__name__
    return None


def stored_splits(
    store_dir: Path,
    name: str,
    key: str,
    spec: StoreSpec,
    source: str,
    fill: Callable[[str, np.ndarray, int], None],
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The splits of the store `name`-`key` in `store_dir`, built first when missing, torn or
    outdated; returns memory-mapped tensors and their digests."""
    store = ImageStore(Path(store_dir) / f"{name}-{key[:16]}", key, spec, source)
    with store_lock(store.folder):
        # Under the lock no other build of this store runs: a temporary folder is a killed one's.
        for stale in store.folder.parent.glob(f".{store.folder.name}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        if store.complete():
            log.info("Opening the image store %s (%s)", store.folder, _gb(spec.nbytes()))
        else:
            log.info(
                "Building the image store %s: %d images of %s, %s",
                store.folder,
                sum(spec.counts.values()),
                source,
                _gb(spec.nbytes()),
            )
            store.build(fill)
        return store.open()


def decode_into(
    paths: Sequence[Path], decode: Callable[[Path], np.ndarray], pool
) -> Callable[[np.ndarray, int], None]:
    """A `fill` for one split: decode `paths[start : start + len(out)]` on `pool` into `out`."""

    def fill(out: np.ndarray, start: int) -> None:
        for i, image in enumerate(pool.map(decode, paths[start : start + len(out)])):
            out[i] = image

    return fill
