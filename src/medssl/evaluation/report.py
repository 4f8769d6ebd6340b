"""Everything reported for one protocol: metrics on val and test, calibration before and after
temperature scaling, selective prediction, binary operating points, and their figures.

Keys are flat: `test/linear/auroc`, `test/linear/ece_ts`, `test/linear/abstain/0.80/coverage`,
`test/linear/op/sens0.90/specificity`, `linear/temperature_ts` (the fitted T).

Temperature scaling keeps binary and multi-label AUROC exactly (a monotone map of each score);
multi-class one-vs-rest AUROC can move slightly, since softmax(z / T)_k is not a monotone map of
softmax(z)_k across images. Accuracy never changes: the argmax is the same.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medssl.evaluation import figures
from medssl.evaluation.calibration import TemperatureScaler, confidence_and_correct, logits_to_probs
from medssl.evaluation.metrics import classification_metrics, predictions
from medssl.evaluation.operating_points import operating_points
from medssl.evaluation.protocol import ProtocolOutput
from medssl.evaluation.selective import accuracy_coverage, aurc, selective_metrics

log = logging.getLogger(__name__)


@dataclass
class ReportOptions:
    """What to draw and how (config `eval.report`)."""

    n_bins: int
    figures: bool
    cam: bool
    cam_images: int
    gallery_size: int
    embedding_max_points: int
    tsne_perplexity: float
    tsne_max_iter: int
    positive_class: int | None

    def positive(self, n_classes: int) -> int:
        """The class index called positive in a binary task (1 unless configured)."""
        index = 1 if self.positive_class is None else int(self.positive_class)
        if not 0 <= index < n_classes:
            raise ValueError(
                f"eval.report.positive_class must be 0 or 1, got {self.positive_class}"
            )
        return index


def report_protocol(
    name: str,
    out: ProtocolOutput,
    task: str,
    labels: dict[str, np.ndarray],
    test_images: np.ndarray,
    class_names: list[str],
    options: ReportOptions,
    figures_dir: Path,
) -> dict[str, float]:
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
    if task == "binary":
        pos = options.positive(2)
        for key, value in operating_points(
            labels["val"] == pos,
            calibrated["val"][:, pos],
            labels["test"] == pos,
            calibrated["test"][:, pos],
        ).items():
            results[f"test/{name}/{key}"] = value
    for param, value in out.params.items():
        results[f"{name}/{param}"] = value
    log.info(
        "%s: test ACC %.3f, AUROC %.3f, ECE %.3f -> %.3f after temperature scaling (T = %.2f)",
        name,
        results[f"test/{name}/acc"],
        results[f"test/{name}/auroc"],
        results[f"test/{name}/ece"],
        results[f"test/{name}/ece_ts"],
        scaler.temperature,
    )
    if options.figures:
        draw_protocol_figures(
            name,
            task,
            labels["test"],
            probs["test"],
            calibrated["test"],
            test_images,
            class_names,
            options,
            figures_dir,
            results,
        )
    return results


def anchored(task: str, logits: np.ndarray) -> np.ndarray:
    """Binary logits as (0, z1 - z0): the same softmax, and dividing by a temperature then keeps
    the margins' order exactly (z1/T - z0/T can round differently from (z1 - z0)/T)."""
    logits = np.asarray(logits, dtype=np.float64)
    return logits - logits[:, :1] if task == "binary" else logits


def draw_protocol_figures(
    name, task, y, probs, calibrated, test_images, class_names, options, figures_dir, results
) -> None:
    conf_raw, correct_raw = confidence_and_correct(task, y, probs)
    conf_ts, correct_ts = confidence_and_correct(task, y, calibrated)
    figures.reliability_diagram(
        figures_dir / f"reliability_{name}.png",
        {
            f"{name}, test, uncalibrated": (conf_raw, correct_raw, results[f"test/{name}/ece"]),
            f"{name}, test, temperature-scaled (T={results[f'{name}/temperature_ts']:.2f})": (
                conf_ts,
                correct_ts,
                results[f"test/{name}/ece_ts"],
            ),
        },
        options.n_bins,
    )
    figures.accuracy_coverage_plot(
        figures_dir / f"coverage_{name}.png",
        {
            "uncalibrated": (
                *accuracy_coverage(conf_raw, correct_raw),
                aurc(conf_raw, correct_raw),
            ),
            "temperature-scaled": (
                *accuracy_coverage(conf_ts, correct_ts),
                aurc(conf_ts, correct_ts),
            ),
        },
        f"{name}: accuracy-coverage (test)",
    )
    if task == "multilabel":
        return
    if task == "binary":
        points = {
            f"{op} (t={results[f'test/{name}/op/{op}/threshold']:.2f})": results[
                f"test/{name}/op/{op}/threshold"
            ]
            for op in ("sens0.90", "spec0.90", "youden")
        }
        pos = options.positive(2)
        figures.roc_pr_curves(
            figures_dir / f"roc_pr_{name}.png",
            y == pos,
            calibrated[:, pos],
            f"{name} (test), positive = {figures.short(class_names[pos], 16)}",
            points,
        )
    y_pred = predictions(task, calibrated)
    figures.confusion_matrix_plot(
        figures_dir / f"confusion_{name}.png",
        y,
        y_pred,
        class_names,
        f"{name}: confusion matrix (test)",
    )
    wrong = np.flatnonzero(y_pred != y)
    wrong = wrong[np.argsort(-conf_ts[wrong], kind="stable")][: options.gallery_size]
    captions = [
        f"true {figures.short(class_names[y[i]], 16)}\npred {figures.short(class_names[y_pred[i]], 16)}"
        f" p={conf_ts[i]:.2f}"
        for i in wrong
    ]
    figures.image_gallery(
        figures_dir / f"errors_{name}.png",
        test_images[wrong],
        captions,
        f"{name}: most confident test errors (calibrated p)",
    )
