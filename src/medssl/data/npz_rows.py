"""Rows of one array inside an `.npz`, read in chunks from its zip member.

MedMNIST ships zipped `.npz` files, which cannot be memory-mapped and which `np.load` would
decompress whole (a 224 px TissueMNIST split is several GB). Reading the member's `.npy`
header and then its rows a chunk at a time converts such a file into the image store with the
memory of one chunk.
"""

from __future__ import annotations

import zipfile

import numpy as np


class NpzRows:
    """`read(n)` returns the next `n` rows of the array `key` in the `.npz` at `path`."""

    def __init__(self, path, key: str) -> None:
        self._zip = zipfile.ZipFile(path)
        self._file = self._zip.open(f"{key}.npy")
        version = np.lib.format.read_magic(self._file)
        read_header = (
            np.lib.format.read_array_header_1_0
            if version == (1, 0)
            else np.lib.format.read_array_header_2_0
        )
        self.shape, fortran_order, self.dtype = read_header(self._file)
        if fortran_order:  # np.save writes C order unless asked; MedMNIST's files are C order
            raise ValueError(f"{key} in {path} is stored in Fortran order")
        self._row_bytes = int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize
        self.position = 0

    def read(self, n: int) -> np.ndarray:
        n = min(n, self.shape[0] - self.position)
        data = self._file.read(n * self._row_bytes)
        if len(data) != n * self._row_bytes:
            raise EOFError(f"the array ends after {self.position} of {self.shape[0]} rows")
        self.position += n
        return np.frombuffer(data, dtype=self.dtype).reshape(n, *self.shape[1:])

    def close(self) -> None:
        self._file.close()
        self._zip.close()


def npz_header(path, key: str) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype of `key` in the `.npz` at `path`, without reading its data."""
    rows = NpzRows(path, key)
    try:
        return rows.shape, rows.dtype
    finally:
        rows.close()
