"""Weights & Biases tracking of a run: config at the start, one point per epoch, figures and
results at the end.

`logger=wandb` turns it on. `mode: offline` (the default) writes the run under
`<run folder>/wandb/` without a network; `wandb sync <that folder>/offline-run-*` uploads it
later. In a sweep the runs are grouped by the sweep folder's name and tagged with their main
choices, and the config is logged flat (`method`, `trainer.epochs`, `label_frac`, ...) so the UI
filters on it. The run id is kept in the run folder (`wandb_run.json`), so a resumed or
requeued job continues the same W&B run. No API key is written anywhere by this module.

The sweep report logs through the same tracker as one more run of the sweep's group
(`job_type=report`, medssl.study.report.wandb_summary); `report_at_end: true` has a sweep do so
when its last job ends (medssl.study.sweep_summary).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

from medssl.atomic_files import write_json
from medssl.errors import MedsslError

log = logging.getLogger(__name__)

ID_FILE = "wandb_run.json"


def sweep_group(sweep_dir: Path) -> str:
    """The W&B group of a sweep's runs: the sweep folder's last two names
    (`multirun/label_efficiency/breastmnist` -> `label_efficiency/breastmnist`)."""
    sweep_dir = Path(sweep_dir).resolve()
    return f"{sweep_dir.parent.name}/{sweep_dir.name}"


def flatten(config: dict, prefix: str = "") -> dict:
    """Nested config -> `{"trainer.epochs": 30, ...}`; lists stay values."""
    flat = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


class WandbTracker:
    def __init__(
        self,
        *,
        project: str,
        entity: str | None,
        mode: str,
        group: str | None,
        job_type: str | None,
        tags: Sequence[str],
        report_at_end: bool,
    ) -> None:
        if mode not in ("online", "offline", "disabled"):
            raise MedsslError(f"logger.mode must be online, offline or disabled, got {mode!r}.")
        self.project, self.entity, self.mode = project, entity, mode
        self.group, self.job_type, self.tags = group, job_type, list(tags or ())
        self.report_at_end = report_at_end
        self._run = None

    def start(
        self,
        config: dict,
        run_dir: Path,
        name: str,
        *,
        group: str | None = None,
        job_type: str | None = None,
        tags: list[str] = (),
    ) -> str:
        """Start (or resume, from the id in `run_dir`) the run; the logger config's own
        `group`/`job_type` win over the arguments, its tags are merged with them."""
        import wandb

        run_dir = Path(run_dir)
        stored_id = self._stored_id(run_dir)  # None: wandb makes one
        try:
            self._run = wandb.init(
                project=self.project,
                entity=self.entity,
                mode=self.mode,
                group=self.group or group,
                job_type=self.job_type or job_type,
                tags=list(dict.fromkeys([*self.tags, *tags])),
                name=name,
                id=stored_id,
                resume="allow",
                config=flatten(config),
                dir=str(run_dir),
                reinit="finish_previous",
            )
        except Exception as error:  # wandb raises its own types for login and network problems
            raise MedsslError(
                f"W&B could not start a run ({type(error).__name__}: {error}); use logger.mode=offline "
                f"and `wandb sync` later, or drop logger=wandb."
            ) from None
        run_id = self._run.id
        write_json(run_dir / ID_FILE, {"id": run_id, "project": self.project})
        log.info("W&B run %s (%s, id %s) logging to %s", name, self.mode, run_id, run_dir / "wandb")
        return run_id

    @staticmethod
    def _stored_id(run_dir: Path) -> str | None:
        try:
            return json.loads((run_dir / ID_FILE).read_text())["id"]
        except (OSError, ValueError, KeyError):
            return None

    def log_epoch(self, record: dict) -> None:
        numbers = {
            f"pretrain/{k}": v
            for k, v in record.items()
            if isinstance(v, (int, float)) and k != "epoch"
        }
        self._run.log(numbers, step=int(record["epoch"]))

    @property
    def run(self):
        """The live wandb run between `start` and `finish` (None outside them)."""
        return self._run

    def log(self, values: dict) -> None:
        """Anything wandb logs (numbers, `wandb.Table`, `wandb.Image`) as one step."""
        if values and self._run is not None:
            self._run.log(values)

    def log_files(self, name: str, kind: str, files: Sequence[Path], metadata: dict) -> None:
        """`files` as a new version of the artifact `name` (W&B keeps one version per content)."""
        import wandb

        artifact = wandb.Artifact(name, type=kind, metadata=metadata)
        for path in files:
            artifact.add_file(str(path), name=Path(path).name)
        self._run.log_artifact(artifact)

    def log_figures(self, figures_dir: Path) -> None:
        import wandb

        images = {
            f"figures/{path.stem}": wandb.Image(str(path))
            for path in sorted(Path(figures_dir).glob("*.png"))
        }
        if images and self._run is not None:
            self._run.log(images)

    def finish(self, results: dict | None = None, *, failed: bool = False) -> None:
        """Close the run (exit code 1 when `failed`); safe to call twice or before `start`."""
        if self._run is None:
            return
        if results:
            self._run.summary.update(
                {
                    k: v
                    for k, v in results.items()
                    if isinstance(v, (int, float, str, bool)) and v is not None
                }
            )
        self._run.finish(exit_code=1 if failed else 0)
        self._run = None
