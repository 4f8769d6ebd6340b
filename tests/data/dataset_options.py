"""What a folder dataset option passes its loader, for tests that call the loaders directly.

The loaders have no Python defaults: `conf/dataset/<option>.yaml` holds them, so a test takes its
keyword arguments from there (the `intensity` block built) and changes only what it is about.
"""

from __future__ import annotations

from hydra.utils import instantiate
from omegaconf import OmegaConf

from medssl.data.intensity import IntensityMapping
from tests.conftest import CONF


def _option(name: str):
    return OmegaConf.load(CONF / "dataset" / f"{name}.yaml")


def loader_options(option: str, **changes) -> dict:
    """`dataset=<option>`'s keyword arguments but `root`, with `changes` on top."""
    cfg = _option(option)
    options = OmegaConf.to_container(cfg, resolve=True)
    for key in ("_target_", "root"):
        options.pop(key)
    options["intensity"] = instantiate(cfg.intensity)
    return {**options, **changes}


def intensity(**changes) -> IntensityMapping:
    """The `dataset.intensity` block of the folder options (`kind: range`), with `changes`."""
    block = OmegaConf.to_container(_option("image_folder").intensity)
    block.pop("_target_")
    return IntensityMapping(**{**block, **changes})
