"""Look at a dataset before training on it.

    python -m medssl.cli.inspect dataset=breastmnist
    python -m medssl.cli.inspect dataset=image_folder dataset.root=/data/aptos out=aptos_inspection

Composes conf/inspect.yaml: the training config plus `out` (default: Hydra's run folder) and
`inspect.*`. Loads `dataset` with its own loader and writes into `out`: `inspect.md` (image
shape, dtype and range per split; counts per class, or positives per label for multi-label
sets, with the imbalance ratio; mean intensity per group; exact duplicates within and across
splits), `inspect.json` with the same numbers, and `class_counts.png`, `samples.png`,
`intensity.png`. Images are shown as stored, before any augmentation.
"""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
from omegaconf import DictConfig

from medssl.atomic_files import unwritable
from medssl.components import build
from medssl.config_schema import check_config
from medssl.configs import config_dir
from medssl.errors import run_or_exit
from medssl.inspection.document import write_inspection


def inspect_dataset(cfg: DictConfig) -> dict:
    data = build(cfg, "dataset")
    out = Path(cfg.out)
    try:
        return write_inspection(
            data,
            out,
            tiles_per_class=cfg.inspect.tiles_per_class,
            duplicate_examples=cfg.inspect.duplicate_examples,
            seed=cfg.seed,
        )
    except OSError as error:  # `out` under a file, read-only or full
        raise unwritable(Path(error.filename or out), error) from None


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="inspect")
def main(cfg: DictConfig) -> None:
    logging.raiseExceptions = False  # a full disk: the sentence, not one traceback per log line
    run_or_exit(check_config, cfg)
    run_or_exit(inspect_dataset, cfg)


if __name__ == "__main__":
    main()
