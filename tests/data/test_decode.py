"""decode.py: raster files at their own depth, DICOM by its LUTs, one sentence for a bad file."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from pydicom.encaps import encapsulate
from pydicom.pixels import get_decoder
from pydicom.uid import JPEGLSLossless

from medssl.data.decode import IMAGE_SUFFIXES, decode_image, source_dtype
from medssl.errors import MedsslError
from tests.data.conftest import write_dicom

RNG = np.random.default_rng(0)


def expected_dicom(stored, dtype, slope=1.0, intercept=0.0, window=None, invert=False):
    """The module docstring's rule, written out for the LINEAR window."""
    v = stored.astype(np.float64) * slope + intercept
    if window is not None:
        c, w = window
        y = np.clip((v - (c - 0.5)) / (w - 1) + 0.5, 0, 1)
    elif v.max() > v.min():
        y = (v - v.min()) / (v.max() - v.min())
    else:
        y = np.zeros_like(v)
    y = 1 - y if invert else y
    return np.round(y * np.iinfo(dtype).max).astype(dtype)


def ramp12(h=30, w=40) -> np.ndarray:
    """A 12-bit ramp, most values above 255."""
    return (np.arange(h * w).reshape(h, w) * 3 + 100).astype(np.uint16)


# ----------------------------------------------------------------------------- DICOM

GREY_CASES = {
    "8bit-mono2": (RNG.integers(0, 256, (30, 40)).astype(np.uint8), {}),
    "8bit-mono1-window": (
        RNG.integers(0, 256, (30, 40)).astype(np.uint8),
        {"photometric": "MONOCHROME1", "WindowCenter": 120, "WindowWidth": 101},
    ),
    "16bit-mono2-rescale-window": (
        ramp12(),
        {"RescaleSlope": 2, "RescaleIntercept": -1024, "WindowCenter": 40, "WindowWidth": 400},
    ),
    "16bit-mono1": (ramp12(), {"photometric": "MONOCHROME1", "BitsStored": 12}),
    "16bit-mono1-rescale": (
        ramp12(),
        {"photometric": "MONOCHROME1", "RescaleSlope": 0.5, "RescaleIntercept": 10},
    ),
    "signed-rescale-window": (
        (ramp12().astype(np.int16) - 2000),
        {"RescaleSlope": 1, "RescaleIntercept": -24, "WindowCenter": -300, "WindowWidth": 1500},
    ),
}


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("case", sorted(GREY_CASES))
def test_dicom_grey_follows_the_modality_lut_window_and_inversion(tmp_path, case, dtype):
    stored, attributes = GREY_CASES[case]
    path = write_dicom(tmp_path / "x.dcm", stored, **attributes)
    window = attributes.get("WindowCenter"), attributes.get("WindowWidth")
    expected = expected_dicom(
        stored,
        dtype,
        slope=attributes.get("RescaleSlope", 1.0),
        intercept=attributes.get("RescaleIntercept", 0.0),
        window=None if window[0] is None else window,
        invert=attributes.get("photometric") == "MONOCHROME1",
    )
    out = decode_image(path, 30, 1, dtype)
    assert out.dtype == dtype and out.shape == (1, 30, 30)
    np.testing.assert_array_equal(out[0], expected[:, 5:35])
    three = decode_image(path, 30, 3, dtype)
    np.testing.assert_array_equal(three, np.repeat(out, 3, axis=0))


def test_dicom_resize_is_the_same_resize_of_the_quantised_image(tmp_path):
    stored = ramp12()
    path = write_dicom(tmp_path / "x.dicom", stored, WindowCenter=1500, WindowWidth=2000)
    expected = expected_dicom(stored, np.uint16, window=(1500, 2000))
    # 30 x 40 -> shorter side 16: 16 x 21, then columns 2..18.
    shrunk = cv2.resize(expected, (21, 16), interpolation=cv2.INTER_AREA)[:, 2:18]
    np.testing.assert_array_equal(decode_image(path, 16, 1, np.uint16)[0], shrunk)
    grown = cv2.resize(expected, (85, 64), interpolation=cv2.INTER_LINEAR)[:, 10:74]
    np.testing.assert_array_equal(decode_image(path, 64, 1, np.uint16)[0], grown)


def test_dicom_constant_image_is_zero_or_full_when_inverted(tmp_path):
    stored = np.full((8, 8), 700, np.uint16)
    mono2 = write_dicom(tmp_path / "a.dcm", stored)
    mono1 = write_dicom(tmp_path / "b.dcm", stored, photometric="MONOCHROME1")
    assert (decode_image(mono2, 8, 1, np.uint16) == 0).all()
    assert (decode_image(mono1, 8, 1, np.uint8) == 255).all()


def test_dicom_window_takes_the_first_of_several_values(tmp_path):
    stored = ramp12(8, 8)
    path = write_dicom(tmp_path / "x.dcm", stored, WindowCenter=[300, 900], WindowWidth=[200, 50])
    expected = expected_dicom(stored, np.uint8, window=(300, 200))
    np.testing.assert_array_equal(decode_image(path, 8, 1, np.uint8)[0], expected)


def test_dicom_other_voi_functions_and_widths(tmp_path):
    v = np.arange(64, dtype=np.uint16).reshape(8, 8) * 10

    def decoded(**window):
        return decode_image(write_dicom(tmp_path / "x.dcm", v, **window), 8, 1, np.uint16)[0]

    unit = decoded(WindowCenter=300, WindowWidth=1)
    np.testing.assert_array_equal(unit, np.where(v > 299.5, 65535, 0))
    exact = np.clip((v - 300.0) / 200 + 0.5, 0, 1)
    np.testing.assert_array_equal(
        decoded(WindowCenter=300, WindowWidth=200, VOILUTFunction="LINEAR_EXACT"),
        np.round(exact * 65535).astype(np.uint16),
    )
    sigmoid = 1 / (1 + np.exp(-4 * (v - 300.0) / 200))
    got = decoded(WindowCenter=300, WindowWidth=200, VOILUTFunction="SIGMOID")
    assert np.abs(got.astype(int) - np.round(sigmoid * 65535)).max() <= 1
    # A width the standard forbids is ignored: min-max instead.
    np.testing.assert_array_equal(
        decoded(WindowCenter=300, WindowWidth=0), expected_dicom(v, np.uint16)
    )


@pytest.mark.parametrize("bits", [8, 16])
def test_dicom_rgb_keeps_the_stored_colours(tmp_path, bits):
    dtype = np.uint8 if bits == 8 else np.uint16
    stored = RNG.integers(0, np.iinfo(dtype).max + 1, (12, 12, 3)).astype(dtype)
    path = write_dicom(tmp_path / "x.dcm", stored, photometric="RGB")
    out = decode_image(path, 12, 3, dtype)
    np.testing.assert_array_equal(out, stored.transpose(2, 0, 1))
    grey = decode_image(path, 12, 1, dtype)
    np.testing.assert_array_equal(grey[0], cv2.cvtColor(stored, cv2.COLOR_RGB2GRAY))
    other = np.uint16 if bits == 8 else np.uint8
    y = stored / np.iinfo(dtype).max
    np.testing.assert_array_equal(
        decode_image(path, 12, 3, other),
        np.round(y * np.iinfo(other).max).astype(other).transpose(2, 0, 1),
    )


def test_dicom_source_dtype(tmp_path):
    def dtype_of(pixels, **attributes):
        return source_dtype(write_dicom(tmp_path / "x.dcm", pixels, **attributes))

    eight, twelve = np.zeros((4, 4), np.uint8), np.zeros((4, 4), np.uint16)
    assert dtype_of(eight) == np.uint8
    assert dtype_of(twelve, BitsStored=12) == np.uint16
    assert dtype_of(twelve, BitsStored=12, WindowCenter=40, WindowWidth=400) == np.uint16
    # A window 256 stored values wide or narrower loses nothing in 8 bits ...
    assert dtype_of(twelve, BitsStored=12, WindowCenter=40, WindowWidth=256) == np.uint8
    assert dtype_of(twelve, WindowCenter=40, WindowWidth=400, RescaleSlope=2) == np.uint8
    # ... and a wide one merges 8-bit stored values.
    assert dtype_of(eight, WindowCenter=40, WindowWidth=300, RescaleSlope=0.5) == np.uint16
    assert dtype_of(np.zeros((4, 4, 3), np.uint8), photometric="RGB") == np.uint8
    assert dtype_of(np.zeros((4, 4, 3), np.uint16), photometric="RGB") == np.uint16


def test_dicom_found_by_its_magic_without_the_suffix(tmp_path):
    stored = RNG.integers(0, 256, (6, 6)).astype(np.uint8)
    path = write_dicom(tmp_path / "scan", stored)
    np.testing.assert_array_equal(
        decode_image(path, 6, 1, np.uint8)[0], expected_dicom(stored, np.uint8)
    )


def test_multiframe_dicom_is_refused_in_one_sentence(tmp_path):
    path = write_dicom(tmp_path / "x.dcm", np.zeros((2, 4, 4), np.uint8), NumberOfFrames=2)
    with pytest.raises(MedsslError, match="2 frames") as error:
        decode_image(path, 4, 1, np.uint8)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_compressed_dicom_without_its_decoder_names_the_packages(tmp_path, capfd):
    if get_decoder(JPEGLSLossless).is_available:
        pytest.skip("a JPEG-LS decoder is installed here, so pydicom would try to decode")
    garbage = encapsulate([b"not a JPEG-LS codestream"])
    path = write_dicom(
        tmp_path / "x.dcm", np.zeros((4, 4), np.uint8), syntax=JPEGLSLossless, PixelData=garbage
    )
    with pytest.raises(MedsslError) as error:
        decode_image(path, 4, 1, np.uint8)
    message = str(error.value)
    assert str(path) in message and "JPEG-LS" in message and "pylibjpeg" in message
    assert message.count(". ") == 0 and "\n" not in message
    assert capfd.readouterr().err == ""


# ----------------------------------------------------------------------------- raster files


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_sixteen_bit_raster_keeps_its_values(tmp_path, suffix):
    grey, colour = ramp12(), np.stack([ramp12(), ramp12() // 2, 4095 - ramp12()], -1)
    grey_path, colour_path = tmp_path / f"g{suffix}", tmp_path / f"c{suffix}"
    cv2.imwrite(str(grey_path), grey)
    cv2.imwrite(str(colour_path), colour)  # stored as BGR
    assert source_dtype(grey_path) == source_dtype(colour_path) == np.uint16
    np.testing.assert_array_equal(decode_image(grey_path, 30, 1, np.uint16)[0], grey[:, 5:35])
    rgb = colour[:, 5:35, ::-1].transpose(2, 0, 1)
    np.testing.assert_array_equal(decode_image(colour_path, 30, 3, np.uint16), rgb)
    np.testing.assert_array_equal(
        decode_image(grey_path, 30, 3, np.uint16), np.repeat(grey[None, :, 5:35], 3, axis=0)
    )
    np.testing.assert_array_equal(
        decode_image(colour_path, 30, 3, np.uint8), np.round(rgb / 257).astype(np.uint8)
    )


def legacy_fit(image: np.ndarray, size: int) -> np.ndarray:
    """The resize and centre crop of `image_files.decode_image` before the image store
    (commit 078a383)."""
    h, w = image.shape[:2]
    scale = size / min(h, w)
    new_w, new_h = max(size, round(w * scale)), max(size, round(h * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    image = cv2.resize(image, (new_w, new_h), interpolation=interpolation)
    top, left = (new_h - size) // 2, (new_w - size) // 2
    return image[top : top + size, left : left + size]


def legacy_decode_image(path: Path, size: int, channels: int, scale: int = 1) -> np.ndarray:
    """That function whole: OpenCV's 8-bit read (times `scale`, as uint16 when 257), resize,
    crop, RGB order."""
    flag = cv2.IMREAD_GRAYSCALE if channels == 1 else cv2.IMREAD_COLOR
    image = cv2.imread(str(path), flag)
    image = legacy_fit(image if scale == 1 else image.astype(np.uint16) * scale, size)
    if channels == 1:
        return image[None]
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB).transpose(2, 0, 1)


def eight_bit_files(folder: Path) -> list[Path]:
    grey = RNG.integers(0, 256, (30, 44)).astype(np.uint8)
    colour = RNG.integers(0, 256, (30, 44, 3)).astype(np.uint8)
    paths = []
    for suffix in (".png", ".jpg", ".bmp", ".tif"):
        for name, image in (("grey", grey), ("colour", colour)):
            paths.append(folder / f"{name}{suffix}")
            cv2.imwrite(str(paths[-1]), image)
    return paths


@pytest.mark.parametrize("channels", [1, 3])
def test_eight_bit_files_decode_exactly_as_before(tmp_path, channels):
    for path in eight_bit_files(tmp_path):
        assert source_dtype(path) == np.uint8
        for size in (16, 30, 50):
            old = legacy_decode_image(path, size, channels)
            np.testing.assert_array_equal(decode_image(path, size, channels, np.uint8), old)
            # 8 -> 16 bits is v * 257 at the file's size, then the same resize.
            wide = decode_image(path, size, channels, np.uint16)
            np.testing.assert_array_equal(wide, legacy_decode_image(path, size, channels, 257))


def test_suffixes_are_the_old_ones_and_dicom():
    before = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}
    assert set(IMAGE_SUFFIXES) == before | {".dcm", ".dicom"}


# ----------------------------------------------------------------------------- bad files


def bad_files(folder: Path) -> list[Path]:
    png = cv2.imencode(".png", ramp12())[1].tobytes()
    tif = cv2.imencode(".tif", ramp12())[1].tobytes()
    bmp = cv2.imencode(".bmp", ramp12().astype(np.uint8))[1].tobytes()
    contents = {
        "crc.png": png[:16] + b"\0" * 8 + png[24:],  # IHDR damaged: libpng would print
        "idat.png": png[:60] + bytes(40) + png[100:],
        "truncated.png": png[: len(png) // 2],
        "random.png": RNG.bytes(300),
        "empty.png": b"",
        "truncated.tif": tif[: len(tif) // 2],  # OpenCV's TIFF log would print
        "truncated.bmp": bmp[: len(bmp) // 2],
        "random.dcm": RNG.bytes(300),
        "text.dicom": b"not a DICOM file\n" * 20,
    }
    for name, data in contents.items():
        (folder / name).write_bytes(data)
    no_pixels = write_dicom(folder / "nopixels.dcm", np.zeros((4, 4), np.uint8))
    from pydicom import dcmread

    ds = dcmread(no_pixels)
    del ds.PixelData
    ds.save_as(no_pixels, enforce_file_format=True)
    return [folder / name for name in contents] + [no_pixels, folder / "missing.png"]


def test_bad_files_raise_one_sentence_naming_the_file_and_print_nothing(tmp_path, capfd):
    level = cv2.utils.logging.getLogLevel()
    for path in bad_files(tmp_path):
        for call in (
            lambda p: decode_image(p, 8, 1, np.uint8),
            lambda p: decode_image(p, 8, 3, np.uint16),
        ):
            with pytest.raises(MedsslError) as error:
                call(path)
            assert (
                str(error.value) == f"{path} could not be read as an image; delete or replace it."
            )
    for path in (tmp_path / "truncated.tif", tmp_path / "random.dcm", tmp_path / "missing.png"):
        with pytest.raises(MedsslError, match="could not be read"):
            source_dtype(path)
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == ""
    assert cv2.utils.logging.getLogLevel() == level


def test_bad_dtype_is_refused():
    with pytest.raises(ValueError, match="uint8 or uint16"):
        decode_image(Path("x.png"), 8, 1, np.float32)
    with pytest.raises(MedsslError, match="dataset.channels"):
        decode_image(Path("x.png"), 8, 2, np.uint8)
