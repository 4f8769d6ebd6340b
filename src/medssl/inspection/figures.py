"""The inspection's figures, drawn with matplotlib's Agg backend: counts per split, sample
tiles per group, and each group's pixel-intensity histogram."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from medssl.plots import DPI, plt, save_figure, short

SPLIT_COLOURS = {"train": "tab:blue", "val": "tab:orange", "test": "tab:green"}
TILE_PX = 56  # tiles are shown at least this big, pixel-exact (nearest neighbour)
GAP_PX = 4
LABEL_WIDTH = 28  # class and label names beside bars have room for more than in legends


def count_bars(path: Path, names: list[str], counts: dict[str, list[int]], title: str) -> Path:
    """Horizontal bars, one group per row name, one bar per split, each with its count."""
    splits = list(counts)
    rows = len(names)
    height = 0.8 / len(splits)
    fig, ax = plt.subplots(figsize=(7.5, 0.9 + rows * (0.15 + 0.17 * len(splits))))
    peak = max(max(c) for c in counts.values()) or 1
    for s, split in enumerate(splits):
        y = np.arange(rows) + (s - (len(splits) - 1) / 2) * height
        bars = ax.barh(y, counts[split], height=height, label=split, color=SPLIT_COLOURS[split])
        ax.bar_label(bars, labels=[str(c) for c in counts[split]], padding=2, fontsize=8)
    ax.set_yticks(np.arange(rows), [short(n, LABEL_WIDTH) for n in names])
    ax.invert_yaxis()  # first class on top, as in the table
    ax.set_xlim(0, peak * 1.15)
    ax.set_xlabel("images")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    ax.grid(axis="x", alpha=0.3)
    return save_figure(fig, path)


def tile_mosaic(rows: list[torch.Tensor], per_row: int, h: int, w: int) -> np.ndarray:
    """`(H, W, 3)` float mosaic in [0, 1]: row r holds up to `per_row` uint8 images `(n, C, h, w)`
    of `rows[r]`, upscaled pixel-exact; empty cells stay light grey."""
    scale = max(1, -(-TILE_PX // max(h, w)))
    th, tw = h * scale, w * scale
    mosaic = np.full(
        (len(rows) * (th + GAP_PX) - GAP_PX, per_row * (tw + GAP_PX) - GAP_PX, 3), 1.0, np.float32
    )
    for r, images in enumerate(rows):
        for k in range(per_row):
            top, left = r * (th + GAP_PX), k * (tw + GAP_PX)
            if k >= len(images):
                mosaic[top : top + th, left : left + tw] = 0.9
                continue
            tile = images[k].float().div(255).expand(3, -1, -1).permute(1, 2, 0).numpy()
            mosaic[top : top + th, left : left + tw] = tile.repeat(scale, 0).repeat(scale, 1)
    return mosaic


def sample_tiles(
    path: Path,
    names: list[str],
    rows: list[torch.Tensor],
    counts: list[int],
    per_row: int,
    image_size: tuple[int, int],
    group_word: str,
) -> Path:
    """Up to `per_row` images per group, one row each, labelled with the group and its count."""
    mosaic = tile_mosaic(rows, per_row, *image_size)
    row_px = mosaic.shape[0] / len(rows)
    inch = 1 / DPI * 1.6  # show tiles a little larger than their pixels
    fig, ax = plt.subplots(figsize=(mosaic.shape[1] * inch + 2.6, mosaic.shape[0] * inch + 0.5))
    ax.imshow(mosaic, interpolation="nearest")
    ax.set_yticks(
        [(r + 0.5) * row_px for r in range(len(rows))],
        [f"{short(n, LABEL_WIDTH)}\n({c} in train)" for n, c in zip(names, counts, strict=True)],
        fontsize=8,
    )
    ax.set_xticks([])
    for side in ax.spines.values():
        side.set_visible(False)
    ax.tick_params(length=0)
    ax.set_title(f"{per_row} random training images per {group_word}", fontsize=10)
    return save_figure(fig, path)


def intensity_plot(
    path: Path, names: list[str], histograms: torch.Tensor, group_word: str, bin_width: int = 4
) -> Path:
    """One panel per channel, one line per group: the fraction of its pixels at each level,
    summed over bins of `bin_width` levels so that small groups do not draw noise."""
    rows, channels, levels = histograms.shape
    binned = histograms.view(rows, channels, levels // bin_width, bin_width).sum(-1).numpy()
    centres = np.arange(levels // bin_width) * bin_width + (bin_width - 1) / 2
    colours = plt.get_cmap("tab20" if rows > 10 else "tab10")
    titles = ["grey level"] if channels == 1 else ["red", "green", "blue"][:channels]
    fig, axes = plt.subplots(1, channels, figsize=(6.5 * channels, 4.2), squeeze=False, sharey=True)
    for c, ax in enumerate(axes[0]):
        for r in range(rows):
            if binned[r, c].sum() == 0:
                continue
            style = "--" if names[r].startswith("(") else "-"
            ax.plot(
                centres,
                binned[r, c],
                style,
                color=colours(r % 20),
                label=short(names[r], LABEL_WIDTH),
                lw=1.4,
            )
        ax.set_xlim(0, levels - 1)
        ax.set_xlabel(f"{titles[c]} (0-255)")
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel(f"fraction of pixels per {bin_width} levels")
    axes[0, -1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.suptitle(f"pixel intensity per {group_word} (train split)", fontsize=10)
    return save_figure(fig, path)
