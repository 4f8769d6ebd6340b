"""What is measured after the protocols are fitted, on images they were not fitted on:
robustness to corrupted test images, a shifted dataset, MC-dropout uncertainty, and the class
maps of the CAM-refined head. Each uses the protocols' `predict` functions; none fits again."""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from medssl.data.splits import DatasetSplits
from medssl.data.task import Task
from medssl.evaluation import analysis_figures, figures
from medssl.evaluation.calibration import confidence_and_correct, logits_to_probs
from medssl.evaluation.mc_dropout import MCDropout, decision_labels, mc_metrics, mc_statistics
from medssl.evaluation.output_options import EvalOutputOptions
from medssl.evaluation.protocol import ProtocolOutput
from medssl.evaluation.robustness import Robustness, robustness_results, severity_curves
from medssl.evaluation.selective import accuracy_coverage, aurc
from medssl.evaluation.shift import shift_results

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Analyses:
    """Config `eval.analyses`: `robustness`, `mc_dropout` (each off unless enabled) and the
    loaded `shift_dataset` (`eval/analyses/shift_dataset=<option>`; None: none chosen, or not
    loaded yet). None is no such analysis."""

    robustness: Robustness | None
    mc_dropout: MCDropout | None
    shift_dataset: DatasetSplits | None


NO_ANALYSES = Analyses(robustness=None, mc_dropout=None, shift_dataset=None)


def run_analyses(
    analyses: Analyses,
    outputs: dict[str, ProtocolOutput],
    results: dict[str, float],
    data: DatasetSplits,
    options: EvalOutputOptions,
    run_dir: Path,
    device: torch.device,
    batch_size: int,
) -> dict[str, float]:
    """Flat keys of every configured analysis; figures under `run_dir/figures`."""
    run_dir = Path(run_dir)
    figures_dir = run_dir / "figures"
    temperatures = {name: results[f"{name}/temperature_ts"] for name in outputs}
    labels = data.test.labels.numpy()
    extra: dict[str, float] = {}
    if analyses.robustness is not None and analyses.robustness.enabled:
        extra.update(
            robustness_results(
                analyses.robustness,
                outputs,
                temperatures,
                data.test.images,
                labels,
                data.task,
                n_bins=options.n_bins,
                device=device,
                batch_size=batch_size,
            )
        )
        if options.figures:
            for name in outputs:
                analysis_figures.robustness_plot(
                    figures_dir / f"robustness_{name}.png",
                    {
                        m: severity_curves({**results, **extra}, name, m)
                        for m in ("auroc", "acc", "ece", "ece_ts")
                    },
                    f"{name}: test metrics under corruption ({data.name}, {len(labels)} images)",
                )
    if analyses.shift_dataset is not None:
        extra.update(
            shift_results(analyses.shift_dataset, outputs, temperatures, n_bins=options.n_bins)
        )
    mc = analyses.mc_dropout
    if mc is not None and mc.enabled:
        sampled = {n: o for n, o in outputs.items() if o.sample_predict is not None}
        if not sampled:
            log.info("MC dropout skipped: no protocol has dropout before its head (add finetune)")
        for name, out in sampled.items():
            extra.update(mc_dropout_results(name, out, data, labels, mc, results, options, run_dir))
    if options.figures:
        for name, out in outputs.items():
            if out.class_maps is not None:
                class_maps_figure(name, out, data, options.cam_images, figures_dir)
    return extra


def mc_dropout_results(
    name: str,
    out: ProtocolOutput,
    data: DatasetSplits,
    labels: np.ndarray,
    mc: MCDropout,
    results: dict[str, float],
    options: EvalOutputOptions,
    run_dir: Path,
) -> dict[str, float]:
    """`test/<name>/mc/...` keys, a per-image CSV and the coverage figure."""
    samples = out.sample_predict(data.test.images, mc.samples, mc.seed)
    metrics = mc_metrics(data.task, labels, samples)
    extra = {f"test/{name}/mc/{k}": v for k, v in metrics.items()}
    extra[f"{name}/mc/samples"], extra[f"{name}/mc/rate"] = mc.samples, mc.rate
    log.info(
        "%s MC dropout (%d samples, rate %.2f): AURC %.4f by entropy, %.4f by mutual information, "
        "%.4f by softmax confidence",
        name,
        mc.samples,
        mc.rate,
        metrics["aurc"],
        metrics["aurc_mi"],
        results[f"test/{name}/aurc"],
    )
    stats = mc_statistics(data.task, samples)
    correct = stats["mean_probs"].argmax(axis=1) == decision_labels(data.task, labels)
    _write_per_decision_csv(run_dir / f"mc_dropout_{name}.csv", stats, correct)
    if options.figures:
        calibrated = logits_to_probs(data.task, out.test / results[f"{name}/temperature_ts"])
        conf, hit = confidence_and_correct(data.task, labels, calibrated)
        analysis_figures.mc_coverage_plot(
            run_dir / "figures" / f"coverage_mc_{name}.png",
            {
                "softmax confidence": (*accuracy_coverage(conf, hit), aurc(conf, hit)),
                "MC predictive entropy": (
                    *accuracy_coverage(-stats["entropy"], correct),
                    metrics["aurc"],
                ),
                "MC mutual information": (
                    *accuracy_coverage(-stats["mutual_info"], correct),
                    metrics["aurc_mi"],
                ),
            },
            stats["entropy"],
            correct,
            f"{name}: MC dropout ({mc.samples} samples, rate {mc.rate:g}) vs softmax, {data.name} test",
        )
    return extra


def _write_per_decision_csv(path: Path, stats: dict[str, np.ndarray], correct: np.ndarray) -> None:
    """One row per test decision (image, or image x label for multi-label tasks)."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["decision", "mc_prediction", "mc_correct", "entropy", "mutual_info"])
        for i, (p, ok, h, mi) in enumerate(
            zip(stats["mean_probs"], correct, stats["entropy"], stats["mutual_info"])
        ):
            writer.writerow([i, int(p.argmax()), int(ok), f"{h:.6f}", f"{mi:.6f}"])


def class_maps_figure(
    name: str, out: ProtocolOutput, data: DatasetSplits, n: int, figures_dir: Path
) -> Path:
    """The predicted class's map of the CAM-refined head on the first `n` test images of each
    class in turn, upsampled to the image."""
    labels = data.test.labels.numpy()
    pick = spread_over_classes(labels, n, data.task)
    images = data.test.images[pick]
    maps = torch.as_tensor(out.class_maps(images))
    probs = logits_to_probs(data.task, out.test[pick])
    predicted = probs.argmax(axis=1)
    chosen = maps[torch.arange(len(pick)), torch.as_tensor(predicted)][:, None]
    overlays = torch.nn.functional.interpolate(
        chosen, size=images.shape[-2:], mode="bilinear", align_corners=False
    )[:, 0].numpy()
    h, w = maps.shape[-2:]
    captions = [
        f"true {figures.short(data.class_names[labels[i]], 16) if data.task != Task.MULTILABEL else '-'}\n"
        f"map of {figures.short(data.class_names[k], 16)} p={probs[j, k]:.2f}"
        for j, (i, k) in enumerate(zip(pick, predicted))
    ]
    thresholds = getattr(getattr(out.model, "head", None), "thresholds", None)
    return analysis_figures.class_map_pairs(
        figures_dir / f"cam_refine_maps_{name}.png",
        images.numpy(),
        overlays,
        captions,
        f"{name}: CAM-refined head on test images, the predicted class's {h}x{w} map "
        f"(min-max scaled, upsampled; contours: the thresholds)",
        tuple(thresholds.tolist()) if thresholds is not None else (),
    )


def spread_over_classes(labels: np.ndarray, n: int, task: Task) -> np.ndarray:
    """`n` test images, spread over the classes so every class is shown when n allows."""
    if task == Task.MULTILABEL:
        return np.arange(min(n, len(labels)))
    by_class = [np.flatnonzero(labels == k) for k in np.unique(labels)]
    picks = [idx[r] for r in range(n) for idx in by_class if r < len(idx)]
    return np.sort(np.array(picks[:n], dtype=int))
