"""Weights & Biases tracking of a run: config at the start, one point per epoch, results at the end.

`logger=wandb` turns it on. `mode: offline` (the default) writes the run under
`<run folder>/wandb/` without a network; `wandb sync <that folder>/offline-run-*` uploads it
later. `group` gathers the runs of one sweep in the W&B UI.
"""

from __future__ import annotations

import logging
from pathlib import Path

from medssl.errors import MedsslError

log = logging.getLogger(__name__)


class WandbTracker:
    def __init__(
        self,
        project: str = "medssl",
        entity: str | None = None,
        mode: str = "offline",
        group: str | None = None,
        tags: list[str] | None = None,
    ) -> None:
        if mode not in ("online", "offline", "disabled"):
            raise MedsslError(f"logger.mode must be online, offline or disabled, got {mode!r}.")
        self.project, self.entity, self.mode = project, entity, mode
        self.group, self.tags = group, list(tags or [])
        self._run = None

    def start(self, config: dict, run_dir: Path, name: str) -> None:
        import wandb

        try:
            self._run = wandb.init(
                project=self.project,
                entity=self.entity,
                mode=self.mode,
                group=self.group,
                tags=self.tags,
                name=name,
                config=config,
                dir=str(run_dir),
                reinit="finish_previous",
            )
        except Exception as error:  # wandb raises its own types for login and network problems
            raise MedsslError(
                f"W&B could not start a run ({type(error).__name__}: {error}); use logger.mode=offline "
                f"and `wandb sync` later, or drop logger=wandb."
            ) from None
        log.info("W&B run %s (%s) logging to %s", name, self.mode, Path(run_dir) / "wandb")

    def log_epoch(self, record: dict) -> None:
        numbers = {
            f"pretrain/{k}": v
            for k, v in record.items()
            if isinstance(v, (int, float)) and k != "epoch"
        }
        self._run.log(numbers, step=int(record["epoch"]))

    def finish(self, results: dict) -> None:
        self._run.summary.update({k: v for k, v in results.items() if v is not None})
        self._run.finish()
        self._run = None
