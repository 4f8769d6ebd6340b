"""Encoders kept at chosen epochs (`trainer.keep_epochs`), so each can be evaluated fully.

`encoders/epoch_010.pt` beside the run's encoder.pt holds what encoder.pt holds (the backbone
config, `in_chans`, `input_size`, the weights, a trained head) as they were after epoch 10, and
`epoch`: `python -m medssl.cli.evaluate ckpt=RUN/encoders/epoch_010.pt` scores it. A kept encoder is
written before the checkpoint of its epoch, so a run killed in between writes it again (the
same weights) when it resumes.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from medssl.errors import MedsslError

log = logging.getLogger(__name__)

FOLDER = "encoders"


def check_keep_epochs(keep_epochs, epochs: int) -> tuple[int, ...]:
    """`trainer.keep_epochs` as sorted distinct epochs, each one the run reaches."""
    kept = tuple(sorted({int(e) for e in keep_epochs}))
    outside = [e for e in kept if not 1 <= e <= epochs]
    if outside:
        raise MedsslError(
            f"trainer.keep_epochs={list(kept)} names epochs {outside} that a run of "
            f"trainer.epochs={epochs} does not reach; use epochs from 1 to {epochs}."
        )
    return kept


def kept_encoder_path(run_dir: Path, epoch: int) -> Path:
    return Path(run_dir) / FOLDER / f"epoch_{epoch:03d}.pt"


def link_kept_encoders(source: Path, run_dir: Path, epochs: tuple[int, ...]) -> list[Path]:
    """Hard-link (across filesystems: copy) the kept encoders of `epochs` from the folder that
    pretrained them (an encoder-cache entry) into `run_dir/encoders/`; an epoch the pretraining
    did not keep (it ran with other keep_epochs) is named in a warning."""
    linked, missing = [], []
    for epoch in epochs:
        kept, target = kept_encoder_path(source, epoch), kept_encoder_path(run_dir, epoch)
        if not kept.is_file():
            missing.append(epoch)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.link.tmp")
        tmp.unlink(missing_ok=True)
        try:
            os.link(kept, tmp)
        except OSError:
            shutil.copyfile(kept, tmp)
        os.replace(tmp, target)
        linked.append(target)
    if linked:
        log.info(
            "Kept encoders of epochs %s: %s",
            [e for e in epochs if e not in missing],
            linked[0].parent,
        )
    if missing:
        log.warning(
            "trainer.keep_epochs: epochs %s were not kept when this encoder was pretrained in %s; "
            "cache.enabled=false (or deleting that folder) pretrains it again keeping them",
            missing,
            source,
        )
    return linked
