"""The report's figures as PNG bytes: label-efficiency curves and per-variant bar charts.

Drawn on Agg canvases of their own, without pyplot, so a report never opens a window or leaks
figures into a caller's pyplot state.
"""

from __future__ import annotations

import io
import textwrap

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from medssl.study.report.cells import Study
from medssl.study.report.metrics import (
    display_name,
    in_unit_interval,
    like_for_like,
    lower_is_better,
    protocol_of,
)
from medssl.study.report.stats import level_text
from medssl.study.report.tables import percent
from medssl.study.report.variants import Variant

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
FONT_SIZE = 10
REFERENCE_STYLES = ("--", ":", "-.", (0, (6, 2, 1, 2, 1, 2)), (0, (1, 1)))
SUPERVISED_STYLES = ("-", "--", ":", "-.")


def label_efficiency_png(study: Study, dataset: str, metric: str) -> bytes | None:
    """Mean over seeds per variant against the label fraction (log axis), with t bands."""
    fractions = study.fractions_in(dataset)
    if len(fractions) < 2:
        return None
    fig = Figure(figsize=(8.5, 4.6), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    drawn = False
    variants = study.variants_in(dataset)
    for variant in variants:
        points = [
            (100 * frac, summary)
            for frac in fractions
            if (cell := study.cell(dataset, variant, frac)) is not None
            and (summary := cell.estimate(metric)) is not None
        ]
        if not points:
            continue
        drawn = True
        colour, style = line_style(variant, variants)
        xs = [x for x, _ in points]
        ax.plot(
            xs,
            [s.mean for _, s in points],
            marker="o",
            color=colour,
            linestyle=style,
            label=variant.label,
        )
        ax.fill_between(
            xs,
            [_clip(metric, s.low) for _, s in points],
            [_clip(metric, s.high) for _, s in points],
            color=colour,
            alpha=0.15,
        )
    if not drawn:
        return None
    _reference_lines(ax, study.references(dataset, metric), metric)
    ticks = [100 * frac for frac in fractions]
    ax.set_xscale("log")
    ax.set_xticks(ticks, [percent(f) for f in fractions])
    ax.minorticks_off()
    ax.set_xlabel("labelled training images (% of the train split, log scale)", fontsize=FONT_SIZE)
    ax.set_ylabel(_axis_label(metric), fontsize=FONT_SIZE)
    ax.set_title(
        f"{dataset}: {_shown(metric)}, {protocol_of(metric)} protocol\n"
        f"mean over seeds, band: {level_text(study.confidence)} t-interval",
        fontsize=FONT_SIZE + 1,
    )
    ax.grid(True, alpha=0.3)
    ax.tick_params(labelsize=FONT_SIZE - 1)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=FONT_SIZE - 1, frameon=False)
    return _png(fig)


def _reference_lines(ax, references: list, metric: str) -> None:
    """Each published reference as a horizontal line, in the order its dataset lists them: dark
    where it was trained as `metric`'s protocol scores (like for like), light otherwise."""
    for index, reference in enumerate(references):
        ax.axhline(
            reference.value,
            linestyle=REFERENCE_STYLES[index % len(REFERENCE_STYLES)],
            color=reference_colour(reference, metric),
            label=reference_label(reference),
        )


def reference_colour(reference, metric: str) -> str:
    """Dark grey for a like-for-like reference (or one that does not say how it was trained),
    light grey for one trained another way (an end-to-end network beside a linear probe)."""
    if reference.protocol is None or like_for_like(reference.protocol, metric):
        return "0.25"
    return "0.65"


def ablation_png(study: Study, dataset: str, metric: str, baseline: Variant) -> bytes | None:
    """One horizontal bar per variant and a panel per label fraction; dashed: the baseline."""
    fractions = study.fractions_in(dataset)
    variants = study.variants_in(dataset)
    width = 2.0 + 3.4 * len(fractions) + 0.06 * max(len(v.label) for v in variants)
    fig = Figure(figsize=(width, 1.6 + 0.42 * len(variants)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(fractions), sharex=True, sharey=True, squeeze=False)[0]
    rows = list(range(len(variants)))
    for ax, frac in zip(axes, fractions):
        for row, variant in zip(rows, variants):
            cell = study.cell(dataset, variant, frac)
            summary = cell.estimate(metric) if cell is not None else None
            if summary is None:
                note = "no run" if cell is None else "n/a" if cell.finished else "failed"
                ax.text(
                    0.01,
                    row,
                    note,
                    va="center",
                    fontsize=FONT_SIZE - 1,
                    color="0.4",
                    transform=ax.get_yaxis_transform(),
                )
                continue
            ax.barh(
                row,
                summary.mean,
                xerr=summary.half_width,  # None: a single seed, no interval
                color=COLOURS[row % len(COLOURS)],
                alpha=0.85,
                capsize=3,
            )
            ax.text(
                _clip(metric, summary.high),
                row,
                f" {summary.mean:.3f}",
                va="center",
                fontsize=FONT_SIZE - 1,
                bbox={"facecolor": "white", "edgecolor": "none", "pad": 1, "alpha": 0.8},
            )
        base_cell = study.cell(dataset, baseline, frac)
        base = base_cell.estimate(metric) if base_cell is not None else None
        if base is not None:
            ax.axvline(base.mean, linestyle="--", color="black", linewidth=1)
        ax.set_title(f"{percent(frac)} labels", fontsize=FONT_SIZE)
        ax.set_xlabel(_axis_label(metric), fontsize=FONT_SIZE)
        ax.margins(x=0.18)
        if in_unit_interval(metric):  # an interval past 1 says "few seeds", not "AUROC > 1"
            ax.set_xlim(0.0, 1.15)
        ax.grid(True, axis="x", alpha=0.3)
        ax.tick_params(labelsize=FONT_SIZE - 1)
    axes[0].set_yticks(rows, [v.label for v in variants])
    axes[0].invert_yaxis()
    fig.suptitle(
        f"{dataset}: {_shown(metric)}, {protocol_of(metric)} protocol "
        f"(mean, {level_text(study.confidence)} t-interval over seeds; dashed: {baseline.label})",
        fontsize=FONT_SIZE + 1,
    )
    return _png(fig)


def line_style(variant: Variant, variants: list[Variant]) -> tuple[str, str]:
    """The baselines look the same in every study: from-scratch black, random floor grey dashed.
    Several from-scratch variants (an augmentation or weighting search) stay black and differ
    by line style, so they can be told apart."""
    if variant.is_supervised:
        supervised = [v for v in variants if v.is_supervised]
        return "black", SUPERVISED_STYLES[supervised.index(variant) % len(SUPERVISED_STYLES)]
    if variant.method == "random" and not variant.parts:
        return "0.55", "--"
    return COLOURS[variants.index(variant) % len(COLOURS)], "-"


def _clip(metric: str, value: float) -> float:
    return min(max(value, 0.0), 1.0) if in_unit_interval(metric) else value


def _axis_label(metric: str) -> str:
    direction = "lower is better" if lower_is_better(metric) else "higher is better"
    return f"{_shown(metric)} ({direction})"


def _shown(metric: str) -> str:
    """`val/linear/auroc` -> `val AUROC`: which split a figure shows is never left to guess."""
    split = metric.split("/", 1)[0]
    return f"{split} {display_name(metric)}" if split in ("val", "test") else display_name(metric)


def reference_label(reference) -> str:
    """What the line is: its name, model and training where the dataset config gives them, else
    its citation (the report's notes cite every reference)."""
    if reference.described == (reference.name or "reference"):
        return "\n".join(textwrap.wrap(f"{reference.label}: {reference.source}", 38))
    return "\n".join(textwrap.wrap(f"published: {reference.described}", 38))


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=130)
    return buffer.getvalue()
