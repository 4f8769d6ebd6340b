"""One image file -> a square uint8 or uint16 array: PNG, JPEG, BMP, TIFF and DICOM.

Every file ends the same way: its shorter side is resized to `size` (INTER_AREA when
shrinking, bilinear when enlarging), the centre is cropped, and the result is
`(channels, size, size)` with colour in RGB order. What comes before depends on the format.

Raster files (OpenCV) keep their own depth, 8 or 16 bits per sample, and change depth so that
the full range maps to the full range: 16 -> 8 bits is `round(v / 257)`, 8 -> 16 bits is
`v * 257`. An 8-bit file decoded to uint8 is exactly what `image_files.decode_image` gives.
OpenCV converts grey <-> colour while decoding, as it always did.

DICOM (pydicom) becomes a value in [0, 1] by its LUTs, then uint8 or uint16, before the resize
(dicom_image.py has the rules).

OpenCV logs nothing while it decodes here. libpng prints its errors to stderr itself, past
OpenCV's log level, so a PNG's critical chunks are checked before libpng reads them: a damaged
or truncated PNG becomes one MedsslError and no stderr line.
"""

from __future__ import annotations

import threading
import zlib
from pathlib import Path

import cv2
import numpy as np

from medssl.data.dicom_image import dicom_image, dicom_source_dtype, read_dicom, unreadable
from medssl.errors import MedsslError

RASTER_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
DICOM_SUFFIXES = (".dcm", ".dicom")
IMAGE_SUFFIXES = RASTER_SUFFIXES + DICOM_SUFFIXES

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# A DICOM file is a 128-byte preamble, then these four bytes.
_DICOM_MAGIC, _DICOM_MAGIC_AT = b"DICM", 128


def source_dtype(path: Path) -> np.dtype:
    """uint16 when decoding `path` to uint8 would merge values that uint16 keeps apart, else
    uint8: 16-bit PNG and TIFF; DICOM colour with BitsStored > 8; DICOM grayscale whose window
    spans more than 256 stored values, or with no window and BitsStored > 8. Reads the PNG or
    DICOM header only, other formats at an eighth of their size."""
    path = Path(path)
    head = _read_head(path)
    if _is_dicom(path, head):
        return dicom_source_dtype(read_dicom(path, stop_before_pixels=True))
    if head.startswith(_PNG_SIGNATURE):
        # IHDR is the first chunk; its bit depth is byte 24 of the file.
        if len(head) < 25 or head[12:16] != b"IHDR":
            raise unreadable(path)
        return np.dtype(np.uint16 if head[24] == 16 else np.uint8)
    image = _imread(path, cv2.IMREAD_REDUCED_GRAYSCALE_8 | cv2.IMREAD_ANYDEPTH)
    return np.dtype(np.uint16 if image.dtype == np.uint16 else np.uint8)


def decode_image(path: Path, size: int, channels: int, dtype: np.dtype | type) -> np.ndarray:
    """`dtype` (uint8 or uint16) `(channels, size, size)`: the shorter side resized to `size`,
    then a centre crop; RGB order for 3 channels. The value rules are in the module docstrings
    (this one, dicom_image.py's)."""
    path, dtype = Path(path), _check_dtype(dtype)
    if channels not in (1, 3):
        raise MedsslError(f"dataset.channels must be 1 (grayscale) or 3 (RGB), got {channels}.")
    head = _read_head(path)
    if _is_dicom(path, head):
        image = _match_channels(dicom_image(path, dtype), channels)
    else:
        image = _raster_image(path, head, channels, dtype)
    image = _fit_square(image, size)
    return image[None] if image.ndim == 2 else image.transpose(2, 0, 1)


def _check_dtype(dtype: np.dtype | type) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype not in (np.uint8, np.uint16):
        raise ValueError(f"decode_image makes uint8 or uint16 arrays, not {dtype}")
    return dtype


def _read_head(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            return handle.read(_DICOM_MAGIC_AT + len(_DICOM_MAGIC))
    except OSError as error:
        raise unreadable(path) from error


def _is_dicom(path: Path, head: bytes) -> bool:
    return path.suffix.lower() in DICOM_SUFFIXES or head[_DICOM_MAGIC_AT:] == _DICOM_MAGIC


def _fit_square(image: np.ndarray, size: int) -> np.ndarray:
    h, w = image.shape[:2]
    scale = size / min(h, w)
    new_w, new_h = max(size, round(w * scale)), max(size, round(h * scale))
    # INTER_AREA averages when shrinking (no aliasing); bilinear when enlarging.
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    image = cv2.resize(image, (new_w, new_h), interpolation=interpolation)
    top, left = (new_h - size) // 2, (new_w - size) // 2
    return image[top : top + size, left : left + size]


def _match_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """Grey `(H, W)` or RGB `(H, W, 3)` -> the number of channels asked for."""
    if image.ndim == 2 and channels == 3:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.ndim == 3 and channels == 1:
        return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return image


def _convert_depth(image: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if image.dtype == dtype:
        return image
    if dtype == np.uint16:
        return image.astype(np.uint16) * np.uint16(257)
    # round(v / 257) without floats: v / 257 is never exactly halfway between two integers.
    return ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)


# ---------------------------------------------------------------------------- raster files


class _QuietOpenCv:
    """OpenCV's log silenced while any thread decodes here, restored when the last one ends."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._saved = cv2.utils.logging.LOG_LEVEL_WARNING

    def __enter__(self) -> None:
        with self._lock:
            if self._users == 0:
                self._saved = cv2.utils.logging.getLogLevel()
                cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
            self._users += 1

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0:
                cv2.utils.logging.setLogLevel(self._saved)


_quiet_opencv = _QuietOpenCv()


def _imread(path: Path, flags: int) -> np.ndarray:
    with _quiet_opencv:
        image = cv2.imread(str(path), flags)
    if image is None:
        raise unreadable(path)
    return image


def _raster_image(path: Path, head: bytes, channels: int, dtype: np.dtype) -> np.ndarray:
    """`(H, W)` grey or `(H, W, 3)` RGB of `dtype` at the file's own size."""
    if head.startswith(_PNG_SIGNATURE):
        _check_png(path)
    flags = cv2.IMREAD_GRAYSCALE if channels == 1 else cv2.IMREAD_COLOR
    image = _imread(path, flags | cv2.IMREAD_ANYDEPTH)
    if image.dtype not in (np.uint8, np.uint16):
        # A float or signed TIFF: OpenCV's own 8-bit conversion, as decoding always did.
        image = _imread(path, flags)
    image = _convert_depth(image, dtype)
    return image if channels == 1 else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _check_png(path: Path) -> None:
    """Every critical chunk whole and matching its CRC, up to IEND. Ancillary chunks are left
    to libpng, which skips a damaged one."""
    try:
        data = memoryview(path.read_bytes())
    except OSError as error:
        raise unreadable(path) from error
    pos = len(_PNG_SIGNATURE)
    while pos + 12 <= len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        end = pos + 12 + length
        kind = bytes(data[pos + 4 : pos + 8])
        if end > len(data):
            break
        stored_crc = int.from_bytes(data[end - 4 : end], "big")
        if kind[:1].isupper() and zlib.crc32(data[pos + 4 : end - 4]) != stored_crc:
            break
        if kind == b"IEND":
            return
        pos = end
    raise unreadable(path)
