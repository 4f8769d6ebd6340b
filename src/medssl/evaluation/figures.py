"""The evaluation figures, drawn with matplotlib's Agg backend into PNG files.

Each function takes arrays and a path and writes one figure; none computes a metric that is not
also in results.json, except the curves themselves.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_curve

from medssl.evaluation.calibration import reliability_bins
from medssl.plots import plt, save_figure, short


def reliability_diagram(
    path: Path, panels: dict[str, tuple[np.ndarray, np.ndarray, float]], n_bins: int
) -> Path:
    """One column per panel title -> (confidence, correct, ECE): accuracy per equal-width bin
    against the diagonal, and below it the number of decisions per bin."""
    fig, axes = plt.subplots(
        2,
        len(panels),
        figsize=(4.6 * len(panels), 5.6),
        squeeze=False,
        gridspec_kw={"height_ratios": [3, 1]},
        sharex=True,
    )
    edges = np.linspace(0, 1, n_bins + 1)
    centres, width = (edges[:-1] + edges[1:]) / 2, 1 / n_bins
    for col, (title, (confidence, correct, ece)) in enumerate(panels.items()):
        stats = reliability_bins(confidence, correct, n_bins)
        top, bottom = axes[0, col], axes[1, col]
        filled = stats["count"] > 0
        top.bar(
            centres[filled],
            stats["accuracy"][filled],
            width=width,
            edgecolor="black",
            color="tab:blue",
            label="accuracy",
        )
        low = np.minimum(stats["accuracy"][filled], stats["confidence"][filled])
        top.bar(
            centres[filled],
            np.abs(stats["confidence"][filled] - stats["accuracy"][filled]),
            bottom=low,
            width=width,
            facecolor="none",
            edgecolor="tab:red",
            hatch="//",
            label="gap to mean confidence",
        )
        top.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
        top.set(xlim=(0, 1), ylim=(0, 1), ylabel="Accuracy", title=f"{title}\nECE = {ece:.3f}")
        top.legend(loc="upper left", fontsize=8)
        bottom.bar(centres, stats["count"], width=width, color="tab:gray", edgecolor="black")
        bottom.set(xlabel="Confidence", ylabel="Count")
    return save_figure(fig, path)


def accuracy_coverage_plot(
    path: Path, curves: dict[str, tuple[np.ndarray, np.ndarray, float]], title: str
) -> Path:
    """label -> (coverage, accuracy, AURC)."""
    fig, ax = plt.subplots(figsize=(5, 4))
    # Thick then dashed: temperature scaling keeps the binary ranking, so the curves often coincide.
    styles = ({"linewidth": 3, "alpha": 0.5}, {"linewidth": 1.5, "linestyle": "--"})
    draw_coverage_curves(ax, curves, styles, "images", title, ylim=(0, 1.02))
    return save_figure(fig, path)


def draw_coverage_curves(
    ax,
    curves: dict[str, tuple[np.ndarray, np.ndarray, float]],
    styles: tuple[dict, ...],
    answered: str,
    title: str,
    ylim: tuple[float, float],
) -> None:
    """Accuracy against coverage, one line per label (coverage, accuracy, AURC), styles in turn;
    `answered` names what is answered (images, decisions)."""
    for i, (label, (coverage, accuracy, area)) in enumerate(curves.items()):
        ax.plot(coverage, accuracy, label=f"{label} (AURC {area:.3f})", **styles[i % len(styles)])
    ax.set(
        xlabel=f"Coverage (fraction of {answered} answered)",
        ylabel=f"Accuracy on answered {answered}",
        xlim=(0, 1),
        ylim=ylim,
        title=title,
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")


def roc_pr_curves(
    path: Path,
    y_true: np.ndarray,
    p_positive: np.ndarray,
    title: str,
    points: dict[str, float] | None = None,
) -> Path:
    """ROC and precision-recall curves of P(positive); `points`: name -> threshold to mark on the ROC."""
    fpr, tpr, _ = roc_curve(y_true, p_positive)
    precision, recall, _ = precision_recall_curve(y_true, p_positive)

    fig, (roc_ax, pr_ax) = plt.subplots(1, 2, figsize=(9.5, 4.2))
    roc_ax.plot(fpr, tpr, label=f"ROC (AUROC {auc(fpr, tpr):.3f})")
    roc_ax.plot([0, 1], [0, 1], "k--", linewidth=1, label="chance")
    for name, threshold in (points or {}).items():
        positive = p_positive >= threshold
        y = np.asarray(y_true).astype(bool)
        roc_ax.scatter([np.mean(positive[~y])], [np.mean(positive[y])], s=30, zorder=3, label=name)
    roc_ax.set(
        xlabel="False positive rate (1 - specificity)",
        ylabel="True positive rate (sensitivity)",
        title=f"{title}: ROC",
        xlim=(0, 1),
        ylim=(0, 1.02),
    )
    roc_ax.legend(fontsize=7, loc="lower right")
    pr_ax.plot(recall, precision, label=f"AP {average_precision_score(y_true, p_positive):.3f}")
    pr_ax.axhline(np.mean(y_true), color="k", linestyle="--", linewidth=1, label="prevalence")
    pr_ax.set(
        xlabel="Recall (sensitivity)",
        ylabel="Precision (PPV)",
        title=f"{title}: precision-recall",
        xlim=(0, 1),
        ylim=(0, 1.02),
    )
    pr_ax.legend(fontsize=8, loc="lower left")
    for ax in (roc_ax, pr_ax):
        ax.grid(alpha=0.3)
    return save_figure(fig, path)


def confusion_matrix_plot(
    path: Path, y_true: np.ndarray, y_pred: np.ndarray, class_names: list[str], title: str
) -> Path:
    k = len(class_names)
    counts = np.zeros((k, k), dtype=int)
    np.add.at(counts, (y_true, y_pred), 1)
    size = max(4.0, 0.5 * k + 2.5)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(counts, cmap="Blues")
    fig.colorbar(image, ax=ax, fraction=0.046, label="Images")
    names = [short(n) for n in class_names]
    ax.set(
        xticks=range(k), yticks=range(k), xlabel="Predicted class", ylabel="True class", title=title
    )
    ax.set_xticklabels(names, rotation=45, ha="right")
    ax.set_yticklabels(names)
    for i in range(k):
        for j in range(k):
            ax.text(
                j,
                i,
                str(counts[i, j]),
                ha="center",
                va="center",
                fontsize=9,
                color="white" if counts[i, j] > counts.max() / 2 else "black",
            )
    return save_figure(fig, path)


def displayable(image: np.ndarray) -> np.ndarray:
    """A stored `(C, H, W)` image as `(H, W)` or `(H, W, 3)` floats in [0, 1] for imshow: uint8
    by its range, uint16 stretched min-max (a 12-bit scan in 16 bits would show black)."""
    x = image.astype(np.float32)
    if image.dtype == np.uint8:
        x /= 255.0
    else:
        low, high = float(x.min()), float(x.max())
        x = (x - low) / (high - low) if high > low else np.zeros_like(x)
    return x[0] if x.shape[0] == 1 else x.transpose(1, 2, 0)


def _show(ax, image: np.ndarray) -> None:
    """A stored `(C, H, W)` image as grey or RGB."""
    ax.imshow(displayable(image), cmap="gray", vmin=0, vmax=1)
    ax.set_xticks([])
    ax.set_yticks([])


def image_gallery(
    path: Path,
    images: np.ndarray,
    captions: list[str],
    title: str,
    overlays: np.ndarray | None = None,
    columns: int = 6,
) -> Path:
    """A grid of uint8 `(N, C, H, W)` images with captions; `overlays` `(N, H, W)` in [0, 1] are
    drawn on top as a heat map (class activation maps)."""
    n = len(images)
    if n == 0:
        fig, ax = plt.subplots(figsize=(5, 1.5))
        ax.axis("off")
        ax.text(0.5, 0.5, f"{title}\n(none)", ha="center", va="center")
        return save_figure(fig, path)
    columns = min(columns, n)
    rows = int(np.ceil(n / columns))
    fig, axes = plt.subplots(
        rows, columns, figsize=(2.2 * columns, 2.5 * rows + 0.4), squeeze=False
    )
    for ax in axes.ravel():
        ax.axis("off")
    for i in range(n):
        ax = axes.ravel()[i]
        ax.axis("on")
        _show(ax, images[i])
        if overlays is not None:
            ax.imshow(
                overlays[i],
                cmap="jet",
                alpha=0.45,
                vmin=0,
                vmax=1,
                extent=(-0.5, images.shape[-1] - 0.5, images.shape[-2] - 0.5, -0.5),
            )
        ax.set_title(captions[i], fontsize=8)
    fig.suptitle(title)
    return save_figure(fig, path)


def embedding_plot(
    path: Path,
    coords: np.ndarray,
    labels: np.ndarray,
    class_names: list[str],
    title: str,
    axis_names: tuple[str, str],
) -> Path:
    fig, ax = plt.subplots(figsize=(6, 5))
    cmap = plt.get_cmap("tab10" if len(class_names) <= 10 else "tab20")
    for k, name in enumerate(class_names):
        members = labels == k
        if members.any():
            ax.scatter(
                coords[members, 0],
                coords[members, 1],
                s=10,
                color=cmap(k % cmap.N),
                label=f"{short(name)} ({members.sum()})",
                alpha=0.8,
            )
    ax.set(xlabel=axis_names[0], ylabel=axis_names[1], title=title)
    ax.legend(fontsize=7, markerscale=1.5, loc="best", title="class (n)")
    return save_figure(fig, path)
