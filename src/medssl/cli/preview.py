"""Look at what an augmentation does before training with it.

    python -m medssl.cli.preview dataset=breastmnist augmentation=byol
    python -m medssl.cli.preview dataset=image_folder dataset.root=/data/aptos augmentation=retina out=retina.png

Composes the same Hydra config as `train.py` (any override works, e.g. `augmentation.blur.p=0`),
takes `n_images` training images of `pretrain_dataset` (else `dataset`), and writes a PNG grid to
`out`: one row per image, the stored original first, then each view. Two arguments belong to
the preview itself: `out=` (default `augmentation_preview.png`) and `n_images=` (default 8).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import cv2
import numpy as np
import torch
import yaml
from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from medssl.atomic_files import unwritable
from medssl.components import build
from medssl.configs import config_dir
from medssl.data.model_input import MEAN, STD, to_unit
from medssl.errors import MedsslError, composition_sentence

log = logging.getLogger("medssl.cli.preview")

MIN_CELL_PX = 112
GAP_PX = 4
HEADER_PX = 24


def preview_grid(originals: torch.Tensor, views: list[torch.Tensor]) -> np.ndarray:
    """RGB uint8 grid: rows are images, columns the original then each view, with a header."""
    columns = [to_unit(originals)] + [v.float() * STD + MEAN for v in views]
    n, c, h, w = originals.shape
    scale = max(1, -(-MIN_CELL_PX // max(h, w)))  # ceil: small images are upscaled, pixel-exact
    cell_h, cell_w = h * scale, w * scale
    grid = np.full(
        (HEADER_PX + n * (cell_h + GAP_PX), len(columns) * (cell_w + GAP_PX), 3), 255, np.uint8
    )
    for j, column in enumerate(columns):
        title = "original" if j == 0 else f"view {j}"
        cv2.putText(
            grid,
            title,
            (j * (cell_w + GAP_PX) + 4, HEADER_PX - 8),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.45,
            (0, 0, 0),
            1,
            cv2.LINE_AA,
        )
        pixels = (column.clamp(0, 1) * 255).round().to(torch.uint8).expand(-1, 3, -1, -1)
        for i, image in enumerate(pixels.permute(0, 2, 3, 1).cpu().numpy()):
            top, left = HEADER_PX + i * (cell_h + GAP_PX), j * (cell_w + GAP_PX)
            big = cv2.resize(image, (cell_w, cell_h), interpolation=cv2.INTER_NEAREST)
            grid[top : top + cell_h, left : left + cell_w] = big
    return grid


def write_preview(cfg: DictConfig, out: Path, n_images: int = 8) -> Path:
    source_key = "pretrain_dataset" if cfg.get("pretrain_dataset") is not None else "dataset"
    data = build(cfg, source_key)
    augmentation = build(cfg, "augmentation")
    images = data.train.images
    generator = torch.Generator().manual_seed(int(cfg.seed))
    chosen = torch.randperm(len(images), generator=generator)[: min(n_images, len(images))]
    # The dataset's own mapping of its stored pixels (16-bit ones, say) to [0, 1], as in training.
    intensity = getattr(data, "intensity", None)
    stored = images[chosen]
    views = augmentation(to_unit(augmentation.prepare_images(stored), intensity), generator)
    grid = preview_grid(to_unit(stored, intensity), views)
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise unwritable(out, error) from None
    if not cv2.imwrite(str(out), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR)):
        raise MedsslError(f"could not write the preview image {out}.")
    log.info("Wrote %d images x %d views of %s to %s", len(stored), len(views), data.name, out)
    return out


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    own = {"out": "augmentation_preview.png", "n_images": "8"}
    overrides = []
    for arg in argv:
        key, _, value = arg.partition("=")
        if key in own:
            own[key] = value
        else:
            overrides.append(arg)
    try:
        n_images = _count(own["n_images"])
        try:
            with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
                cfg = compose(config_name="config", overrides=overrides)
        except (HydraException, OmegaConfBaseException, yaml.YAMLError) as error:
            # train.py gets these from Hydra, printed without a traceback
            raise MedsslError(composition_sentence(error)) from None
        write_preview(cfg, Path(own["out"]), n_images)
    except MedsslError as error:
        log.error("%s", error)
        return 1
    return 0


def _count(text: str) -> int:
    try:
        n_images = int(text)
    except ValueError:
        n_images = 0
    if n_images < 1:
        raise MedsslError(f"n_images must be a whole number of images, 1 or more, got {text!r}.")
    return n_images


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
