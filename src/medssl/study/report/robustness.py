"""Robustness in the study report: each variant's AUROC under corrupted test images against
the corruption severity, where the runs measured it (`eval.analyses.robustness.enabled=true`).

A run's value at severity s is its mean AUROC over the corruptions at s
(`test/<protocol>/corrupt/<corruption>/<s>/auroc`); severity 0 is its clean test AUROC. Lines
are means over seeds, one panel per label fraction.
"""

from __future__ import annotations

import re

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from medssl.study.report.cells import Study
from medssl.study.report.collect import Run
from medssl.study.report.figures import FONT_SIZE, _png, line_style
from medssl.study.report.tables import percent


def severities_of(run: Run, protocol: str, metric: str = "auroc") -> dict[int, float]:
    """Severity -> the run's mean over corruptions (0: clean)."""
    pattern = re.compile(rf"test/{re.escape(protocol)}/corrupt/[^/]+/(\d+)/{metric}$")
    by_severity: dict[int, list[float]] = {}
    for key in run.record:
        match = pattern.match(key)
        if match and (value := run.value(key)) is not None:
            by_severity.setdefault(int(match.group(1)), []).append(value)
    if not by_severity:
        return {}
    clean = run.value(f"test/{protocol}/{metric}")
    means = {s: float(np.mean(v)) for s, v in by_severity.items()}
    return {0: clean, **means} if clean is not None else means


def robustness_png(study: Study, dataset: str, protocol: str) -> bytes | None:
    fractions = study.fractions_in(dataset)
    fig = Figure(figsize=(2.0 + 3.6 * len(fractions), 4.0), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(fractions), sharey=True, squeeze=False)[0]
    drawn = False
    variants = study.variants_in(dataset)
    for ax, frac in zip(axes, fractions):
        for variant in variants:
            cell = study.cell(dataset, variant, frac)
            curves = [severities_of(run, protocol) for run in cell.finished] if cell else []
            curves = [c for c in curves if c]
            if not curves:
                continue
            drawn = True
            severities = sorted(set.intersection(*(set(c) for c in curves)))
            means = [float(np.mean([c[s] for c in curves])) for s in severities]
            colour, style = line_style(variant, variants)
            ax.plot(
                severities,
                means,
                marker="o",
                color=colour,
                linestyle=style,
                label=f"{variant.label} (n={len(curves)})",
            )
            ax.set_xticks(severities, ["clean" if s == 0 else str(s) for s in severities])
        ax.set_title(f"{percent(frac)} labels", fontsize=FONT_SIZE)
        ax.set_xlabel("corruption severity", fontsize=FONT_SIZE)
        ax.grid(True, alpha=0.3)
    if not drawn:
        return None
    axes[0].set_ylabel("test AUROC, mean over corruptions", fontsize=FONT_SIZE)
    handles, labels = max((ax.get_legend_handles_labels() for ax in axes), key=lambda h: len(h[0]))
    fig.legend(handles, labels, loc="outside right center", fontsize=FONT_SIZE - 1, frameon=False)
    fig.suptitle(
        f"{dataset}: AUROC under corrupted test images, {protocol} protocol (mean over seeds)",
        fontsize=FONT_SIZE + 1,
    )
    return _png(fig)
