"""Everything measured for one protocol: metrics on val and test, calibration before and after
temperature scaling, selective prediction and binary operating points.

Keys are flat: `test/linear/auroc`, `test/linear/ece_ts`, `test/linear/abstain/0.80/coverage`,
`test/linear/op/sens0.90/specificity`, `linear/temperature_ts` (the fitted T).

Temperature scaling keeps binary and multi-label AUROC exactly (a monotone map of each score);
multi-class one-vs-rest AUROC can move slightly, since softmax(z / T)_k is not a monotone map of
softmax(z)_k across images. Accuracy never changes: the argmax is the same.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from medssl.data.task import Task
from medssl.evaluation.calibration import TemperatureScaler, logits_to_probs
from medssl.evaluation.metrics import classification_metrics
from medssl.evaluation.operating_points import measured_at, val_thresholds
from medssl.evaluation.output_options import EvalOutputOptions
from medssl.evaluation.protocol import ProtocolOutput
from medssl.evaluation.selective import selective_metrics

log = logging.getLogger(__name__)


@dataclass
class ProtocolScores:
    """One protocol's test predictions and the numbers its figures show."""

    probs: np.ndarray  # test probabilities as the protocol predicted them
    calibrated: np.ndarray  # after temperature scaling with T fitted on val
    temperature: float
    ece: float  # test ECE before scaling
    ece_ts: float  # and after
    # Binary tasks: each operating point's threshold on P(positive), chosen on val.
    thresholds: dict[str, float] = field(default_factory=dict)


def score_protocol(
    name: str,
    out: ProtocolOutput,
    task: Task,
    labels: dict[str, np.ndarray],
    options: EvalOutputOptions,
) -> tuple[dict[str, float], ProtocolScores]:
    """The flat keys of protocol `name` and its structured test scores."""
    results: dict[str, float] = {}
    logits = {split: anchored(task, getattr(out, split)) for split in ("val", "test")}
    probs = {split: logits_to_probs(task, logits[split]) for split in ("val", "test")}
    for split in ("val", "test"):
        metrics = classification_metrics(
            task, labels[split], probs[split], options.n_bins, logits[split]
        )
        for metric, value in metrics.items():
            results[f"{split}/{name}/{metric}"] = value

    # Temperature fitted on val logits, reported on test: ranking metrics stay, calibration moves.
    scaler = TemperatureScaler().fit(task, logits["val"], labels["val"])
    calibrated = {split: scaler(logits[split]) for split in ("val", "test")}
    results[f"{name}/temperature_ts"] = scaler.temperature
    metrics = classification_metrics(
        task,
        labels["test"],
        calibrated["test"],
        options.n_bins,
        logits["test"] / scaler.temperature,
    )
    for metric, value in metrics.items():
        results[f"test/{name}/{metric}_ts"] = value
    for key, value in selective_metrics(task, labels["test"], calibrated["test"]).items():
        results[f"test/{name}/{key}"] = value
    thresholds, at_thresholds = operating_points(task, labels, calibrated, options)
    for key, value in at_thresholds.items():
        results[f"test/{name}/{key}"] = value
    for param, value in out.params.items():
        results[f"{name}/{param}"] = value
    scores = ProtocolScores(
        probs=probs["test"],
        calibrated=calibrated["test"],
        temperature=scaler.temperature,
        ece=results[f"test/{name}/ece"],
        ece_ts=results[f"test/{name}/ece_ts"],
        thresholds=thresholds,
    )
    log.info(
        "%s: test ACC %.3f, AUROC %.3f, ECE %.3f -> %.3f after temperature scaling (T = %.2f)",
        name,
        results[f"test/{name}/acc"],
        results[f"test/{name}/auroc"],
        scores.ece,
        scores.ece_ts,
        scores.temperature,
    )
    return results, scores


def operating_points(
    task: Task,
    labels: dict[str, np.ndarray],
    calibrated: dict[str, np.ndarray],
    options: EvalOutputOptions,
) -> tuple[dict[str, float], dict[str, float]]:
    """Binary tasks: the thresholds picked on the positive class's calibrated val scores, and
    test's metrics at them; none for other tasks."""
    if task != Task.BINARY:
        return {}, {}
    pos = options.positive(2)
    thresholds = val_thresholds(labels["val"] == pos, calibrated["val"][:, pos])
    return thresholds, measured_at(thresholds, labels["test"] == pos, calibrated["test"][:, pos])


def anchored(task: Task, logits: np.ndarray) -> np.ndarray:
    """Binary logits as (0, z1 - z0): the same softmax, and dividing by a temperature then keeps
    the margins' order exactly (z1/T - z0/T can round differently from (z1 - z0)/T)."""
    logits = np.asarray(logits, dtype=np.float64)
    return logits - logits[:, :1] if task == Task.BINARY else logits
