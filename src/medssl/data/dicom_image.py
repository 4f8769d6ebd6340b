"""A DICOM file -> a grey or RGB array of uint8 or uint16 values (decode.py resizes it).

The file (pydicom) becomes a value y in [0, 1] first, then `round(y * 255)` or
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
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
from pydicom.pixels import apply_modality_lut, get_decoder

from medssl.errors import MedsslError

_VOI_FUNCTIONS = ("LINEAR", "LINEAR_EXACT", "SIGMOID")
_PHOTOMETRIC = ("MONOCHROME1", "MONOCHROME2", "RGB")


def unreadable(path: Path) -> MedsslError:
    """The one sentence for an image file of any format that cannot be read."""
    return MedsslError(f"{path} could not be read as an image; delete or replace it.")


def read_dicom(path: Path, **kwargs: bool) -> pydicom.Dataset:
    try:
        return pydicom.dcmread(path, **kwargs)
    except Exception as error:  # pydicom raises many types for a damaged file
        raise unreadable(path) from error


def dicom_image(path: Path, dtype: np.dtype) -> np.ndarray:
    """`(H, W)` grey or `(H, W, 3)` RGB of `dtype`, by the rules in the module docstring."""
    ds = read_dicom(path)
    _check_dicom_supported(path, ds)
    try:
        stored = ds.pixel_array
        unit = _colour_unit(ds, stored) if stored.ndim == 3 else _grayscale_unit(ds, stored)
    except Exception as error:  # missing or damaged pixel data, inconsistent header
        raise unreadable(path) from error
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


def dicom_source_dtype(ds: pydicom.Dataset) -> np.dtype:
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
