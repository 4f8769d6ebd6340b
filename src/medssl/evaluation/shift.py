"""Cross-dataset shift (`eval/analyses/shift_dataset=<dataset option>`): the protocols fitted
on the run's dataset score the test split of another dataset of the same task shape, unchanged.

The shapes must agree (channels, image size, task, number of classes); what the classes mean
cannot be checked, so differing class names are logged. Keys: `shift/<dataset>/<protocol>/
<metric>` with the metrics of `test/<protocol>/...`, ECE after the run's val temperature
(`ece_ts`) and the AURC of those calibrated probabilities.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from medssl.data.splits import DatasetSplits
from medssl.data.task import Task
from medssl.errors import MedsslError
from medssl.evaluation.calibration import confidence_and_correct, logits_to_probs
from medssl.evaluation.metrics import classification_metrics
from medssl.evaluation.protocol import ProtocolOutput
from medssl.evaluation.protocol_scores import anchored
from medssl.evaluation.selective import aurc

log = logging.getLogger(__name__)


def task_shape(data: DatasetSplits) -> str:
    return (
        f"{data.channels}-channel {data.image_size} px images and a {data.task} task with "
        f"{data.num_classes} {'labels' if data.task == Task.MULTILABEL else 'classes'}"
    )


def check_shift_dataset(shift, data: DatasetSplits) -> DatasetSplits:
    if not isinstance(shift, DatasetSplits):
        raise MedsslError(
            f"eval.analyses.shift_dataset {shift.name!r} has no labels to score; "
            "choose a labelled dataset."
        )
    same = (shift.channels, shift.image_size, shift.task, shift.num_classes) == (
        data.channels,
        data.image_size,
        data.task,
        data.num_classes,
    )
    if not same:
        raise MedsslError(
            f"eval.analyses.shift_dataset {shift.name!r} has {task_shape(shift)} but dataset "
            f"{data.name!r} has {task_shape(data)}; choose a shift dataset of the same shape "
            "(or set its size)."
        )
    if list(shift.class_names) != list(data.class_names):
        log.warning(
            "shift dataset %s names its classes %s, dataset %s %s: class k is taken to mean the "
            "same in both",
            shift.name,
            shift.class_names,
            data.name,
            data.class_names,
        )
    return shift


def shift_results(
    shift: DatasetSplits,
    outputs: Mapping[str, ProtocolOutput],
    temperatures: Mapping[str, float],
    *,
    n_bins: int,
) -> dict[str, float]:
    """Every protocol's metrics on `shift.test`; the prefix is `shift/<shift.name>/`."""
    labels = shift.test.labels.numpy()
    results: dict[str, float] = {f"shift/{shift.name}/n": len(shift.test)}
    for protocol, out in outputs.items():
        logits = anchored(shift.task, out.predict(shift.test.images))
        probs = logits_to_probs(shift.task, logits)
        prefix = f"shift/{shift.name}/{protocol}"
        for metric, value in classification_metrics(
            shift.task, labels, probs, n_bins, logits
        ).items():
            results[f"{prefix}/{metric}"] = value
        calibrated = logits_to_probs(shift.task, logits / temperatures[protocol])
        ts = classification_metrics(shift.task, labels, calibrated, n_bins, logits)
        results[f"{prefix}/ece_ts"] = ts["ece"]
        results[f"{prefix}/aurc"] = aurc(*confidence_and_correct(shift.task, labels, calibrated))
        log.info(
            "%s on shift dataset %s: test ACC %.3f, AUROC %.3f, ECE %.3f -> %.3f (val T)",
            protocol,
            shift.name,
            results[f"{prefix}/acc"],
            results[f"{prefix}/auroc"],
            results[f"{prefix}/ece"],
            results[f"{prefix}/ece_ts"],
        )
    return results


def shift_names(results: Mapping[str, float]) -> list[str]:
    return list(dict.fromkeys(k.split("/")[1] for k in results if k.startswith("shift/")))
