"""What a sweep report shows: the level of its intervals and its metrics.

`conf/report.yaml` holds them; the command line's `--confidence` and `--metric` override them
(`ReportOptions.overridden`). Every part of the report takes them from here as arguments.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from medssl.errors import MedsslError

KEYS = ("confidence", "metrics")


@dataclass(frozen=True)
class ReportOptions:
    """`confidence`: level of every interval, in (0, 1). `metrics`: results.json keys
    (`test/linear/auroc`) or metric names (`auroc`, for every protocol found), in order."""

    confidence: float
    metrics: tuple[str, ...]

    def __post_init__(self) -> None:
        level = self.confidence
        if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0 < level < 1:
            raise MedsslError(
                f"the report's confidence is a level strictly between 0 and 1 (0.9 for 90 % "
                f"intervals), not {level!r}."
            )
        names = self.metrics
        if not names or not all(isinstance(m, str) and m.strip() for m in names):
            raise MedsslError(
                "the report's metrics are a non-empty list of results.json keys "
                f"(test/linear/auroc) or metric names (auroc), not {list(names)!r}."
            )

    def overridden(self, *, confidence: float | None, metrics: list[str] | None) -> ReportOptions:
        """These options with the command line's values where it gave any."""
        given = {"confidence": confidence, "metrics": tuple(metrics) if metrics else None}
        return dataclasses.replace(self, **{k: v for k, v in given.items() if v is not None})


def read_report_options(path: Path) -> ReportOptions:
    """The options a YAML file holds (`conf/report.yaml`); one sentence for anything wrong."""
    try:
        values = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise MedsslError(f"{path} is not valid YAML{where}.") from None
    except OSError as error:
        raise MedsslError(f"{path}: {error.strerror or error}.") from None
    except (OmegaConfBaseException, ValueError) as error:  # e.g. an unresolvable ${...}
        raise MedsslError(f"{path}: {error}.".replace("\n", " ")) from None
    if not isinstance(values, dict) or sorted(values) != sorted(KEYS):
        found = sorted(values) if isinstance(values, dict) else type(values).__name__
        raise MedsslError(f"{path} holds the keys {', '.join(KEYS)}; found {found}.")
    metrics = values["metrics"]
    if not isinstance(metrics, list):
        raise MedsslError(f"{path}: metrics is a list of names or keys, not {metrics!r}.")
    return ReportOptions(confidence=values["confidence"], metrics=tuple(metrics))
