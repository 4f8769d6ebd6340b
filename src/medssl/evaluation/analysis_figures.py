"""Figures of the robustness and uncertainty analyses: metrics against corruption severity, and
accuracy-coverage curves ranked by MC-dropout uncertainty beside softmax confidence."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medssl.evaluation.figures import displayable, draw_coverage_curves
from medssl.plots import plt, save_figure

SEVERITY_PANELS = (
    ("auroc", "AUROC (higher is better)"),
    ("acc", "Accuracy (higher is better)"),
    ("ece", "ECE, uncalibrated (lower is better)"),
    ("ece_ts", "ECE after val temperature (lower is better)"),
)


def robustness_plot(
    path: Path, panels: dict[str, dict[str, tuple[list[int], list[float]]]], title: str
) -> Path:
    """metric -> corruption -> (severities, values); severity 0 is the clean test set."""
    fig, axes = plt.subplots(2, 2, figsize=(10.5, 7.2), sharex=True)
    cmap = plt.get_cmap("tab10")
    corruptions = sorted({name for curves in panels.values() for name in curves})
    for ax, (metric, label) in zip(axes.ravel(), SEVERITY_PANELS):
        for index, name in enumerate(corruptions):
            if name not in panels.get(metric, {}):
                continue
            severities, values = panels[metric][name]
            ax.plot(severities, values, marker="o", color=cmap(index % 10), label=name)
        severities = sorted({s for c in panels.get(metric, {}).values() for s in c[0]})
        ax.set_xticks(severities, ["clean" if s == 0 else str(s) for s in severities])
        ax.set(title=label, xlabel="Corruption severity", ylabel=label.split(" (")[0])
        if metric.startswith("ece"):
            ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), title="corruption")
    fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


def mc_coverage_plot(
    path: Path,
    curves: dict[str, tuple[np.ndarray, np.ndarray, float]],
    entropy: np.ndarray,
    correct: np.ndarray,
    title: str,
) -> Path:
    """Left: label -> (coverage, accuracy, AURC) curves. Right: the predictive entropy of the
    MC mean's right and wrong decisions (a useful ranking keeps the wrong ones to the right)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10.5, 4.2))
    styles = (
        {"linewidth": 2.5, "color": "black", "alpha": 0.6},
        {"linewidth": 1.8, "color": "tab:red", "linestyle": "--"},
        {"linewidth": 1.8, "color": "tab:blue", "linestyle": ":"},
    )
    lowest = min(a.min() for _, a, _ in curves.values())
    draw_coverage_curves(
        left,
        curves,
        styles,
        "decisions",
        "accuracy-coverage (test)",
        (max(0.0, lowest - 0.05), 1.01),
    )
    bins = np.linspace(0, max(float(entropy.max()), 1e-3), 21)
    right.hist(entropy[correct], bins=bins, alpha=0.6, label=f"right ({correct.sum()})")
    right.hist(entropy[~correct], bins=bins, alpha=0.6, label=f"wrong ({(~correct).sum()})")
    right.set(
        xlabel="Predictive entropy of the MC mean (nats)",
        ylabel="Decisions",
        title="uncertainty of right and wrong decisions",
    )
    right.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


def class_map_pairs(
    path: Path,
    images: np.ndarray,
    maps: np.ndarray,
    captions: list[str],
    title: str,
    thresholds: tuple[float, ...] = (),
    columns: int = 8,
) -> Path:
    """Each uint8 `(C, H, W)` image above itself with its map `(H, W)` in [0, 1] overlaid and
    the thresholds drawn as contours (the regions the head pools)."""
    n = len(images)
    columns = max(1, min(columns, n))
    blocks = int(np.ceil(n / columns))
    fig, axes = plt.subplots(
        2 * blocks, columns, figsize=(1.9 * columns, 4.1 * blocks + 0.5), squeeze=False
    )
    for ax in axes.ravel():
        ax.axis("off")
    for i in range(n):
        top, bottom = (
            axes[2 * (i // columns), i % columns],
            axes[2 * (i // columns) + 1, i % columns],
        )
        shown = displayable(images[i])
        for ax in (top, bottom):
            ax.imshow(shown, cmap="gray", vmin=0, vmax=1)
        bottom.imshow(maps[i], cmap="jet", alpha=0.45, vmin=0, vmax=1)
        if thresholds and np.ptp(maps[i]) > 0:
            bottom.contour(maps[i], levels=sorted(thresholds), colors="white", linewidths=0.8)
        top.set_title(captions[i], fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)
