"""Every folder source through the store equals decoding it into memory, bit for bit, for 8-
and 16-bit images and DICOM; 16-bit sources stay 16-bit and reach the model through
`dataset.intensity`."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from medssl.data.csv_labels import load_csv_labels
from medssl.data.decode import decode_image
from medssl.data.image_folder import load_image_folder
from medssl.data.model_input import to_unit
from medssl.data.unlabelled_folder import load_unlabelled_folder
from tests.data.conftest import write_dicom
from tests.data.dataset_options import intensity, loader_options


def _write(folder, kind: str, i: int, rng) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if kind == "png8":
        cv2.imwrite(str(folder / f"{i}.png"), rng.integers(0, 256, (20, 24), dtype=np.uint8))
    elif kind == "png16":
        cv2.imwrite(str(folder / f"{i}.png"), rng.integers(0, 4096, (20, 24), dtype=np.uint16))
    else:  # a 12-bit DICOM with a rescale and, for every other image, a window
        window = {"WindowCenter": 900, "WindowWidth": 1200} if i % 2 else {}
        pixels = rng.integers(0, 4096, (20, 24), dtype=np.uint16)
        write_dicom(folder / f"{i}.dcm", pixels, RescaleSlope=0.5, RescaleIntercept=-100, **window)


def _class_folder(root, kind, per_class=6):
    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        for i in range(per_class):
            _write(root / "train" / c, kind, i, rng)
    return root


def _equal(a, b) -> bool:
    return all(
        torch.equal(getattr(a, s).images, getattr(b, s).images)
        and torch.equal(getattr(a, s).labels, getattr(b, s).labels)
        for s in ("train", "val", "test")
    )


@pytest.mark.parametrize(
    ("kind", "dtype"), [("png8", torch.uint8), ("png16", torch.uint16), ("dicom", torch.uint16)]
)
def test_image_folder_store_equals_decoding_in_memory(tmp_path, kind, dtype):
    root = _class_folder(tmp_path / "data", kind)
    options = loader_options("image_folder", size=16, channels=1, val_frac=0.2, test_frac=0.2)
    stored = load_image_folder(str(root), **{**options, "store_dir": str(tmp_path / "s")})
    in_memory = load_image_folder(str(root), **{**options, "cache": False})
    assert stored.train.images.dtype == dtype and _equal(stored, in_memory)
    # ...and every stored image is one of the files decoded on its own.
    files = sorted((root / "train").rglob("*.*"))
    dt = np.dtype(str(dtype).split(".")[1])
    decoded = {decode_image(p, 16, 1, dt).tobytes() for p in files}
    for split in ("train", "val", "test"):
        assert {img.numpy().tobytes() for img in getattr(stored, split).images} <= decoded


def test_csv_and_unlabelled_stores_equal_decoding_in_memory(tmp_path):
    root = tmp_path / "data"
    rng = np.random.default_rng(1)
    rows = ["filename,label"]
    for i in range(10):
        _write(root, "dicom" if i % 2 else "png16", i, rng)
        rows.append(f"{i}.{'dcm' if i % 2 else 'png'},{i % 2}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    options = loader_options("csv", size=12, channels=1, val_frac=0.2, test_frac=0.2)
    assert _equal(
        load_csv_labels(str(root), **{**options, "store_dir": str(tmp_path / "s")}),
        load_csv_labels(str(root), **{**options, "cache": False}),
    )
    unlabelled = loader_options("unlabelled_folder", size=12, channels=1)
    stored = load_unlabelled_folder(str(root), **{**unlabelled, "store_dir": str(tmp_path / "s")})
    in_memory = load_unlabelled_folder(str(root), **{**unlabelled, "cache": False})
    assert stored.train.images.dtype == torch.uint16
    assert torch.equal(stored.train.images, in_memory.train.images)


def test_dtype_uint8_keeps_eight_bit_stores_for_sixteen_bit_files(tmp_path):
    root = _class_folder(tmp_path / "data", "png16")
    options = loader_options("image_folder", size=16, channels=1)
    data = load_image_folder(str(root), **{**options, "dtype": "uint8"})
    wide = load_image_folder(str(root), **{**options, "dtype": "uint16"})
    assert data.train.images.dtype == torch.uint8 and wide.train.images.dtype == torch.uint16


def test_the_configured_intensity_reaches_the_model_input(tmp_path):
    root = _class_folder(tmp_path / "data", "png16")
    mapping = intensity(kind="percentile", low=1.0, high=99.0)
    options = loader_options("image_folder", size=16, channels=1, intensity=mapping)
    data = load_image_folder(str(root), **options)
    assert data.intensity is mapping
    unit = to_unit(data.train.images, data.intensity)
    assert float(unit.amin()) == 0.0 and float(unit.amax()) == 1.0  # per image, stretched
    plain = to_unit(data.train.images)  # no mapping: x / 65535, a 12-bit image stays dark
    assert float(plain.amax()) < 4096 / 65535 + 1e-6
