"""One image file -> a square uint8 or uint16 array: PNG, JPEG, BMP, TIFF and DICOM.

Every file ends the same way: its shorter side is resized to `size` (INTER_AREA when
shrinking, bilinear when enlarging), the centre is cropped, and the result is
`(channels, size, size)` with colour in RGB order. What comes before depends on the format.

Raster files (OpenCV) keep their own depth, 8 or 16 bits per sample, and change depth so that
the full range maps to the full range: 16 -> 8 bits is `round(v / 257)`, 8 -> 16 bits is
`v * 257`. An 8-bit file decoded to uint8 is exactly what `image_files.decode_image` gives.
OpenCV converts grey <-> colour while decoding, as it always did.

DICOM (pydicom) becomes a value y in [0, 1] first, then `round(y * 255)` or
`round(y * 65535)` (numpy's rounding, half to even), before the resize:

1. Grayscale stored pixels pass through the modality LUT (RescaleSlope and
   RescaleIntercept, or a Modality LUT Sequence), giving v.
2. With a VOI window (the first WindowCenter c and WindowWidth w), per VOILUTFunction:
   LINEAR (the default, PS3.3 C.11.2.1.2.1): y = clip((v - (c - 0.5)) / (w - 1) + 0.5, 0, 1),
   and for w = 1 the standard's limit, a step: y = 1 where v > c - 0.5, else 0;
   LINEAR_EXACT (C.11.2.1.3.2): y = clip((v - c) / w + 0.5, 0, 1);
   SIGMOID (C.11.2.1.3.1): y = 1 / (1 + exp(-4 (v - c) / w)).
   Without a window, or with a width the standard forbids (below 1 for LINEAR, not positive
   otherwise), y is the image's min-max: (v - min v) / (max v - min v), 0 for a constant image.
   A VOI LUT Sequence is not applied.
3. MONOCHROME1 is inverted: y = 1 - y.
4. Colour (RGB, and YBR, which pydicom converts to RGB) skips 1-3, as DICOM applies those LUTs
   to grayscale only: y = stored / (2 ** BitsStored - 1).

Multi-frame DICOM is refused (2D images only), and so is a compressed transfer syntax whose
decoder needs a package that is not installed; the sentence names the packages.

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
import pydicom
from pydicom.pixels import apply_modality_lut, get_decoder

from medssl.errors import MedsslError

RASTER_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
DICOM_SUFFIXES = (".dcm", ".dicom")
IMAGE_SUFFIXES = RASTER_SUFFIXES + DICOM_SUFFIXES

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# A DICOM file is a 128-byte preamble, then these four bytes.
_DICOM_MAGIC, _DICOM_MAGIC_AT = b"DICM", 128
_VOI_FUNCTIONS = ("LINEAR", "LINEAR_EXACT", "SIGMOID")
_PHOTOMETRIC = ("MONOCHROME1", "MONOCHROME2", "RGB")


def source_dtype(path: Path) -> np.dtype:
    """uint16 when decoding `path` to uint8 would merge values that uint16 keeps apart, else
    uint8: 16-bit PNG and TIFF; DICOM colour with BitsStored > 8; DICOM grayscale whose window
    spans more than 256 stored values, or with no window and BitsStored > 8. Reads the PNG or
    DICOM header only, other formats at an eighth of their size."""
    path = Path(path)
    head = _read_head(path)
    if _is_dicom(path, head):
        return _dicom_source_dtype(_read_dicom(path, stop_before_pixels=True))
    if head.startswith(_PNG_SIGNATURE):
        # IHDR is the first chunk; its bit depth is byte 24 of the file.
        if len(head) < 25 or head[12:16] != b"IHDR":
            raise _unreadable(path)
        return np.dtype(np.uint16 if head[24] == 16 else np.uint8)
    image = _imread(path, cv2.IMREAD_REDUCED_GRAYSCALE_8 | cv2.IMREAD_ANYDEPTH)
    return np.dtype(np.uint16 if image.dtype == np.uint16 else np.uint8)


def decode_image(path: Path, size: int, channels: int, dtype: np.dtype | type) -> np.ndarray:
    """`dtype` (uint8 or uint16) `(channels, size, size)`: the shorter side resized to `size`,
    then a centre crop; RGB order for 3 channels. The module docstring has the value rules."""
    path, dtype = Path(path), _check_dtype(dtype)
    if channels not in (1, 3):
        raise MedsslError(f"dataset.channels must be 1 (grayscale) or 3 (RGB), got {channels}.")
    head = _read_head(path)
    if _is_dicom(path, head):
        image = _match_channels(_dicom_image(path, dtype), channels)
    else:
        image = _raster_image(path, head, channels, dtype)
    image = _fit_square(image, size)
    return image[None] if image.ndim == 2 else image.transpose(2, 0, 1)


def _check_dtype(dtype: np.dtype | type) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype not in (np.uint8, np.uint16):
        raise ValueError(f"decode_image makes uint8 or uint16 arrays, not {dtype}")
    return dtype


def _unreadable(path: Path) -> MedsslError:
    return MedsslError(f"{path} could not be read as an image; delete or replace it.")


def _read_head(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            return handle.read(_DICOM_MAGIC_AT + len(_DICOM_MAGIC))
    except OSError as error:
        raise _unreadable(path) from error


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
        raise _unreadable(path)
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
        raise _unreadable(path) from error
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
    raise _unreadable(path)


# ---------------------------------------------------------------------------- DICOM


def _read_dicom(path: Path, **kwargs: bool) -> pydicom.Dataset:
    try:
        return pydicom.dcmread(path, **kwargs)
    except Exception as error:  # pydicom raises many types for a damaged file
        raise _unreadable(path) from error


def _dicom_image(path: Path, dtype: np.dtype) -> np.ndarray:
    """`(H, W)` grey or `(H, W, 3)` RGB of `dtype`, by the rules in the module docstring."""
    ds = _read_dicom(path)
    _check_dicom_supported(path, ds)
    try:
        stored = ds.pixel_array
        unit = _colour_unit(ds, stored) if stored.ndim == 3 else _grayscale_unit(ds, stored)
    except Exception as error:  # missing or damaged pixel data, inconsistent header
        raise _unreadable(path) from error
    return np.round(unit * np.iinfo(dtype).max).astype(dtype)


def _check_dicom_supported(path: Path, ds: pydicom.Dataset) -> None:
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        raise MedsslError(
            f"{path} holds {frames} frames, and medssl reads 2D images only; "
            "save the frame you want as a file of its own."
        )
    photometric = str(ds.get("PhotometricInterpretation", ""))
    if photometric not in _PHOTOMETRIC and not photometric.startswith("YBR"):
        raise MedsslError(
            f"{path} has PhotometricInterpretation {photometric!r}, and medssl reads "
            f"{', '.join(_PHOTOMETRIC)} and YBR images."
        )
    syntax = ds.file_meta.get("TransferSyntaxUID")
    if syntax is None or not syntax.is_compressed:
        return
    try:
        decoder = get_decoder(syntax)
    except NotImplementedError as error:
        raise MedsslError(
            f"{path} is compressed as {syntax.name} ({syntax}), which pydicom cannot decode; "
            "convert it to an uncompressed transfer syntax."
        ) from error
    if not decoder.is_available:
        packages = "; ".join(decoder.missing_dependencies)
        raise MedsslError(
            f"{path} is compressed as {syntax.name} ({syntax}), which pydicom decodes only "
            f"with a package that is not installed (install one of: {packages})."
        )


def _colour_unit(ds: pydicom.Dataset, stored: np.ndarray) -> np.ndarray:
    return stored.astype(np.float64) / (2 ** int(ds.BitsStored) - 1)


def _grayscale_unit(ds: pydicom.Dataset, stored: np.ndarray) -> np.ndarray:
    v = np.asarray(apply_modality_lut(stored, ds), dtype=np.float64)
    window = _voi_window(ds)
    y = _min_max(v) if window is None else _apply_window(v, *window)
    return 1.0 - y if ds.get("PhotometricInterpretation") == "MONOCHROME1" else y


def _voi_window(ds: pydicom.Dataset) -> tuple[float, float, str] | None:
    """(center, width, function) of the first VOI window, None when absent or invalid."""
    try:
        center = float(np.atleast_1d(ds.get("WindowCenter"))[0])
        width = float(np.atleast_1d(ds.get("WindowWidth"))[0])
    except (TypeError, ValueError, IndexError):
        return None
    function = str(ds.get("VOILUTFunction") or "LINEAR").upper()
    function = function if function in _VOI_FUNCTIONS else "LINEAR"
    valid = width >= 1.0 if function == "LINEAR" else width > 0.0
    return (center, width, function) if valid else None


def _apply_window(v: np.ndarray, center: float, width: float, function: str) -> np.ndarray:
    if function == "SIGMOID":
        # 1 / (1 + exp(-t)) written with tanh, which cannot overflow.
        return 0.5 * (1.0 + np.tanh(2.0 * (v - center) / width))
    if function == "LINEAR_EXACT":
        return np.clip((v - center) / width + 0.5, 0.0, 1.0)
    if width == 1.0:
        return (v > center - 0.5).astype(np.float64)
    return np.clip((v - (center - 0.5)) / (width - 1.0) + 0.5, 0.0, 1.0)


def _min_max(v: np.ndarray) -> np.ndarray:
    low, high = v.min(), v.max()
    return np.zeros_like(v) if high == low else (v - low) / (high - low)


def _dicom_source_dtype(ds: pydicom.Dataset) -> np.dtype:
    bits = int(ds.get("BitsStored") or 8)
    window = _voi_window(ds)
    colour = int(ds.get("SamplesPerPixel") or 1) > 1
    if colour or window is None or "ModalityLUTSequence" in ds:
        return np.dtype(np.uint16 if bits > 8 else np.uint8)
    _, width, function = window
    slope = abs(float(ds.get("RescaleSlope") or 1.0))
    # One stored step moves y by slope / (w - 1) (LINEAR) or at most slope / w; uint8 keeps
    # stored values apart while that step is at least one of its 255 levels.
    stored_steps = (width - 1.0 if function == "LINEAR" else width) / slope
    return np.dtype(np.uint16 if stored_steps > 255 else np.uint8)
