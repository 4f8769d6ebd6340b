"""The figures of one protocol on test: reliability diagrams and accuracy-coverage before and
after temperature scaling, ROC/PR with the operating points (binary), the confusion matrix and
the most confident errors (single-label tasks)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medssl.data.task import Task
from medssl.evaluation import figures
from medssl.evaluation.calibration import confidence_and_correct
from medssl.evaluation.metrics import predictions
from medssl.evaluation.output_options import EvalOutputOptions
from medssl.evaluation.protocol_scores import ProtocolScores
from medssl.evaluation.selective import accuracy_coverage, aurc

ROC_POINTS = ("sens0.90", "spec0.90", "youden")  # the operating points marked on the ROC curve


def draw_protocol_figures(
    name: str,
    task: Task,
    y: np.ndarray,
    scores: ProtocolScores,
    test_images: np.ndarray,
    class_names: list[str],
    options: EvalOutputOptions,
    figures_dir: Path,
) -> None:
    """`y`: the test labels; `scores`: what `score_protocol` measured for `name`."""
    conf_ts = calibration_figures(name, task, y, scores, options.n_bins, figures_dir)
    if task == Task.MULTILABEL:
        return
    if task == Task.BINARY:
        points = {
            f"{op} (t={scores.thresholds[op]:.2f})": scores.thresholds[op] for op in ROC_POINTS
        }
        pos = options.positive(2)
        figures.roc_pr_curves(
            figures_dir / f"roc_pr_{name}.png",
            y == pos,
            scores.calibrated[:, pos],
            f"{name} (test), positive = {figures.short(class_names[pos], 16)}",
            points,
        )
    y_pred = predictions(task, scores.calibrated)
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


def calibration_figures(
    name: str, task: Task, y: np.ndarray, scores: ProtocolScores, n_bins: int, figures_dir: Path
) -> np.ndarray:
    """The reliability diagram and the accuracy-coverage curves, before and after temperature
    scaling; the calibrated confidence of each test decision."""
    conf_raw, correct_raw = confidence_and_correct(task, y, scores.probs)
    conf_ts, correct_ts = confidence_and_correct(task, y, scores.calibrated)
    figures.reliability_diagram(
        figures_dir / f"reliability_{name}.png",
        {
            f"{name}, test, uncalibrated": (conf_raw, correct_raw, scores.ece),
            f"{name}, test, temperature-scaled (T={scores.temperature:.2f})": (
                conf_ts,
                correct_ts,
                scores.ece_ts,
            ),
        },
        n_bins,
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
    return conf_ts
