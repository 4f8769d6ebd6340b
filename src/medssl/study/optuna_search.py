"""What a Hydra Optuna search (hydra-optuna-sweeper, `hydra/sweeper=optuna_search`) needs from
medssl: the study's SQLite file under the sweep folder, the direction of `optimize_metric`, a
sampler seed that moves on with the study, and the value a job reports.

The resolvers below are named in conf/hydra/sweeper/optuna_search.yaml and registered when
`medssl.cli.train` is imported, before Hydra composes the config.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

from omegaconf import OmegaConf

log = logging.getLogger("medssl")

STUDY_FILE = "optuna.db"


def storage_url(sweep_dir: str) -> str:
    """`sqlite:///<sweep folder>/optuna.db`, the folder made first: the study is opened before
    Hydra's launcher creates the sweep folder, and SQLite makes no folders."""
    folder = Path(sweep_dir).expanduser().resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / STUDY_FILE}"


def direction(metric: str) -> str:
    """`maximize` for AUROC and accuracies, `minimize` for errors and losses (the report's own
    rule, medssl.study.report.metrics.lower_is_better)."""
    from medssl.study.report.metrics import lower_is_better

    return "minimize" if lower_is_better(metric) else "maximize"


def continuing_seed(seed: int, storage: str, study_name: str) -> int:
    """`seed` plus the number of trials the stored study already holds: a second start of the
    same search draws new configurations instead of repeating the first start's random ones,
    and the same command on the same study still draws the same ones."""
    return int(seed) + stored_trials(storage, study_name)


def stored_trials(storage: str, study_name: str) -> int:
    path = Path(storage.removeprefix("sqlite:///"))
    if not storage.startswith("sqlite:///") or not path.exists():
        return 0
    import optuna

    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:  # the file holds no study of that name yet
        return 0
    return len(study.trials)


def register_resolvers() -> None:
    """The resolvers conf/hydra/sweeper/optuna_search.yaml uses (idempotent)."""
    for name, function in (
        ("medssl_optuna_storage", storage_url),
        ("medssl_optuna_direction", direction),
        ("medssl_optuna_seed", continuing_seed),
    ):
        OmegaConf.register_new_resolver(name, function, replace=True)


def objective(results: dict | None, metric: str, *, rank: int) -> float | None:
    """What a job returns to a Hydra sweeper: `val/<metric>` of its results, or None where it
    has no score to report: a non-main DDP process, a failed job (error.json), a missing or
    non-finite metric. hydra-optuna-sweeper records a None as a failed trial; a NaN it would
    pass to Optuna, whose refusal then ends the whole search (plugin 1.3.0 with optuna 2.10)."""
    if rank != 0:
        return None
    key = f"val/{metric}"
    if not results:
        log.warning("No %s to report: the job failed or ran elsewhere", key)
        return None
    value = results.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        val_keys = sorted(k for k in results if k.startswith("val/"))
        log.error("The results hold no %s to report (val keys: %s)", key, ", ".join(val_keys))
        return None
    if not math.isfinite(value):
        log.warning("%s is %s: no score to report", key, value)
        return None
    return float(value)
