"""Robustness to corrupted test images (`eval.analyses.robustness`): every fitted protocol
scores the test split under each corruption and severity, without fitting again.

Keys: `test/<protocol>/corrupt/<corruption>/<severity>/{auroc,acc,ece,ece_ts}` (ECE before and
after the temperature fitted on clean val), and per protocol the means over every corruption
and severity, `test/<protocol>/{auroc,acc,ece,ece_ts}_corrupt`, which the sweep report compares
across variants. The corrupted images are made once per corruption and severity, on the device,
in batches, and shared by the protocols.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from medssl.data.task import Task
from medssl.errors import MedsslError
from medssl.evaluation.calibration import (
    confidence_and_correct,
    expected_calibration_error,
    logits_to_probs,
)
from medssl.evaluation.corruptions import Corruption
from medssl.evaluation.metrics import predictions, ranking_auroc
from medssl.evaluation.protocol import ProtocolOutput
from medssl.evaluation.protocol_scores import anchored

log = logging.getLogger(__name__)

METRICS = ("auroc", "acc", "ece", "ece_ts")


class Robustness:
    """Config `eval.analyses.robustness`: `corruptions` by name (a null entry is left out), the
    `severities` to run, and the seed of the random corruptions."""

    def __init__(
        self,
        enabled: bool,
        corruptions: Mapping[str, Corruption | None],
        severities: Sequence[int],
        seed: int,
    ) -> None:
        self.enabled = bool(enabled)
        self.corruptions = {k: v for k, v in corruptions.items() if v is not None}
        self.severities = tuple(int(s) for s in severities)
        if self.enabled and (not self.corruptions or not self.severities):
            raise MedsslError(
                "eval.analyses.robustness is enabled but lists no corruption or no severity."
            )
        for name, corruption in self.corruptions.items():
            bad = [s for s in self.severities if not 1 <= s <= corruption.max_severity]
            if bad:
                raise MedsslError(
                    f"eval.analyses.robustness.severities must lie in 1..{corruption.max_severity} "
                    f"(the levels of {name}), got {bad}."
                )
        self.seed = seed

    @torch.no_grad()
    def corrupted(
        self, images: torch.Tensor, name: str, severity: int, batch_size: int
    ) -> torch.Tensor:
        """`images` (uint8, on the device) under one corruption and severity; the generator is
        reseeded for each, so every severity perturbs the same pixels, only more strongly."""
        corruption = self.corruptions[name]
        generator = torch.Generator(device=images.device).manual_seed(self.seed)
        return torch.cat(
            [
                corruption(images[start : start + batch_size], severity, generator)
                for start in range(0, len(images), batch_size)
            ]
        )


def scored(
    task: Task, y_true: np.ndarray, logits: np.ndarray, temperature: float, n_bins: int
) -> dict[str, float]:
    """AUROC, ACC and ECE of `logits`, and ECE after dividing them by the val `temperature`."""
    logits = anchored(task, logits)
    probs = logits_to_probs(task, logits)
    out = {
        "auroc": ranking_auroc(task, y_true, probs, logits),
        "acc": float(np.mean(predictions(task, probs) == np.asarray(y_true))),
    }
    for suffix, p in (("", probs), ("_ts", logits_to_probs(task, logits / temperature))):
        confidence, correct = confidence_and_correct(task, y_true, p)
        out[f"ece{suffix}"] = expected_calibration_error(confidence, correct, n_bins)
    return out


def robustness_results(
    robustness: Robustness,
    outputs: Mapping[str, ProtocolOutput],
    temperatures: Mapping[str, float],
    images: torch.Tensor,
    labels: np.ndarray,
    task: Task,
    *,
    n_bins: int,
    device: torch.device,
    batch_size: int,
) -> dict[str, float]:
    results: dict[str, float] = {}
    images = images.to(device)
    for name in robustness.corruptions:
        for severity in robustness.severities:
            corrupted = robustness.corrupted(images, name, severity, batch_size)
            for protocol, out in outputs.items():
                metrics = scored(
                    task, labels, out.predict(corrupted), temperatures[protocol], n_bins
                )
                for metric, value in metrics.items():
                    results[f"test/{protocol}/corrupt/{name}/{severity}/{metric}"] = value
        log.info(
            "robustness: %s at severities %s: AUROC %s",
            name,
            list(robustness.severities),
            {
                p: [
                    round(results[f"test/{p}/corrupt/{name}/{s}/auroc"], 3)
                    for s in robustness.severities
                ]
                for p in outputs
            },
        )
    for protocol in outputs:
        for metric in METRICS:
            values = [
                results[f"test/{protocol}/corrupt/{name}/{s}/{metric}"]
                for name in robustness.corruptions
                for s in robustness.severities
            ]
            results[f"test/{protocol}/{metric}_corrupt"] = float(np.nanmean(values))
    return results


def severity_curves(
    results: Mapping[str, float], protocol: str, metric: str
) -> dict[str, tuple[list[int], list[float]]]:
    """Per corruption: severities 0 (clean: `test/<protocol>/<metric>`) and up, and the metric."""
    clean_key = f"test/{protocol}/{metric}"
    prefix = f"test/{protocol}/corrupt/"
    curves: dict[str, dict[int, float]] = {}
    for key, value in results.items():
        if key.startswith(prefix) and key.endswith(f"/{metric}"):
            name, severity, _ = key[len(prefix) :].split("/")
            curves.setdefault(name, {0: results.get(clean_key, float("nan"))})[int(severity)] = (
                value
            )
    return {
        name: (sorted(points), [points[s] for s in sorted(points)])
        for name, points in curves.items()
    }
