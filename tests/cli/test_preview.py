"""`python -m medssl.cli.preview` writes a PNG grid: the originals, then each view."""

from __future__ import annotations

import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from medssl.cli.preview import GAP_PX, HEADER_PX, main, preview_grid
from tests.conftest import REPO


def test_grid_layout_holds_originals_pixel_exact():
    originals = torch.randint(0, 256, (3, 1, 28, 28), dtype=torch.uint8)
    views = [torch.zeros(3, 1, 28, 28), torch.ones(3, 1, 28, 28)]  # normalised: grey 0.5, white
    grid = preview_grid(originals, views)
    cell = 28 * 4  # 28 px is upscaled 4x to reach at least 112 px
    assert grid.shape == (HEADER_PX + 3 * (cell + GAP_PX), 3 * (cell + GAP_PX), 3)
    second = grid[HEADER_PX + cell + GAP_PX : HEADER_PX + 2 * cell + GAP_PX, :cell, 0]
    assert np.array_equal(second[::4, ::4], originals[1, 0].numpy())
    assert (grid[HEADER_PX : HEADER_PX + cell, cell + GAP_PX : 2 * cell + GAP_PX] == 128).all()
    assert (
        grid[HEADER_PX : HEADER_PX + cell, 2 * (cell + GAP_PX) : 3 * cell + 2 * GAP_PX] == 255
    ).all()


def test_preview_writes_png_of_real_images(tmp_path, medmnist_root, monkeypatch):
    monkeypatch.setenv("MEDMNIST_ROOT", str(medmnist_root))
    monkeypatch.chdir(REPO)
    out = tmp_path / "byol.png"
    assert (
        main(
            [
                "dataset=breastmnist",
                "augmentation=byol",
                "augmentation.n_views=3",
                f"out={out}",
                "n_images=5",
            ]
        )
        == 0
    )
    image = cv2.imread(str(out))
    cell = 28 * 4
    assert image.shape == (HEADER_PX + 5 * (cell + GAP_PX), 4 * (cell + GAP_PX), 3)
    first_row = image[HEADER_PX : HEADER_PX + cell]
    original, view = first_row[:, :cell], first_row[:, cell + GAP_PX : 2 * cell + GAP_PX]
    assert original.std() > 10 and not np.array_equal(original, view)


def test_preview_reports_bad_input_in_one_sentence(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(REPO)
    code = main(
        ["dataset=image_folder", f"dataset.root={tmp_path / 'none'}", f"out={tmp_path / 'x.png'}"]
    )
    assert code == 1 and not (tmp_path / "x.png").exists()
    assert any(
        "is not a folder" in r.getMessage() for r in caplog.records if r.levelname == "ERROR"
    )


@pytest.mark.integration
def test_preview_runs_as_a_module(tmp_path, medmnist_root):
    env = {**os.environ, "MEDMNIST_ROOT": str(medmnist_root)}
    out = tmp_path / "retina.png"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "medssl.cli.preview",
            "dataset=breastmnist",
            "augmentation=retina",
            f"out={out}",
            "n_images=2",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert cv2.imread(str(out)).shape == (HEADER_PX + 2 * (112 + GAP_PX), 3 * (112 + GAP_PX), 3)
