"""Pretraining-length curves in the study report: how many epochs pay off?

Where the runs scored their encoder during pretraining (`trainer.eval_every`), each job's
`train_log.jsonl` holds the val AUROC of cheap probes fitted on the labelled subset
(`eval/<protocol>/auroc`). Per variant, the curve is the mean over seeds at each scored epoch
with its Student-t interval. A pretraining counts once: the jobs that reused one cached
encoder (same `pretrain/cache_key`) share its curve. Val only; test is never read for this.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from medssl.study.report.cells import Study
from medssl.study.report.collect import Run
from medssl.study.report.document import Table
from medssl.study.report.figures import FONT_SIZE, _png, line_style
from medssl.study.report.stats import Estimate, estimate, level_text
from medssl.study.report.variants import Variant

PROTOCOLS = {"linear": "linear probe", "knn": "k-NN"}  # what trainer.eval_every scores


def curve_of(folder: Path, run: Run, protocol: str) -> dict[int, float]:
    """Epoch -> val AUROC of `protocol` scored during the run's pretraining ({} if none)."""
    path = Path(folder) / run.folder / "train_log.jsonl"
    if not run.finished or not path.is_file():
        return {}
    curve = {}
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a torn last line of a killed run
        value = row.get(f"eval/{protocol}/auroc")
        if isinstance(value, (int, float)) and math.isfinite(value) and "epoch" in row:
            curve[int(row["epoch"])] = float(value)
    return curve


def variant_curves(study: Study, dataset: str, protocol: str) -> dict[Variant, dict[int, Estimate]]:
    """Variant -> epoch -> the estimate over its pretrainings (one per cache key or job)."""
    curves: dict[Variant, dict[object, dict[int, float]]] = {}
    for run in study.finished:
        if run.dataset != dataset:
            continue
        curve = curve_of(study.folder, run, protocol)
        if curve:
            pretraining = run.record.get("pretrain/cache_key") or run.folder
            curves.setdefault(study.variant(run), {})[pretraining] = curve
    summary = {}
    for variant, by_pretraining in curves.items():
        epochs = sorted({e for curve in by_pretraining.values() for e in curve})
        summary[variant] = {
            e: estimate([c[e] for c in by_pretraining.values() if e in c], study.confidence)
            for e in epochs
        }
    return summary


def pretraining_curves_png(study: Study, dataset: str) -> bytes | None:
    drawn = {p: variant_curves(study, dataset, p) for p in PROTOCOLS}
    drawn = {p: curves for p, curves in drawn.items() if curves}
    if not drawn:
        return None
    fig = Figure(figsize=(2.5 + 4.0 * len(drawn), 4.0), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(drawn), sharey=True, squeeze=False)[0]
    variants = study.variants_in(dataset)
    for ax, (protocol, curves) in zip(axes, drawn.items()):
        for variant, by_epoch in curves.items():
            epochs = list(by_epoch)
            means = np.array([by_epoch[e].mean for e in epochs])
            colour, style = line_style(variant, variants)
            n = max(s.n for s in by_epoch.values())
            ax.plot(epochs, means, marker="o", color=colour, linestyle=style,
                    label=f"{variant.label} (n={n})")  # fmt: skip
            low = [max(by_epoch[e].low, 0.0) for e in epochs]  # AUROC lies in [0, 1]
            high = [min(by_epoch[e].high, 1.0) for e in epochs]
            ax.fill_between(epochs, low, high, color=colour, alpha=0.12)
        ax.set_title(f"{PROTOCOLS[protocol]} on the labelled subset", fontsize=FONT_SIZE)
        ax.set_xlabel("pretraining epoch", fontsize=FONT_SIZE)
        ax.grid(True, alpha=0.3)
    # Scaled to the means: a two-seed band (t = 12.7) would otherwise flatten every line.
    means = [e.mean for c in drawn.values() for by_epoch in c.values() for e in by_epoch.values()]
    axes[0].set_ylim(max(0.0, min(means) - 0.05), min(1.0, max(means) + 0.05))
    axes[0].set_ylabel("val AUROC (higher is better)", fontsize=FONT_SIZE)
    handles, labels = max((ax.get_legend_handles_labels() for ax in axes), key=lambda h: len(h[0]))
    fig.legend(handles, labels, loc="outside right center", fontsize=FONT_SIZE - 1, frameon=False)
    fig.suptitle(
        f"{dataset}: val AUROC during pretraining (mean over seeds, "
        f"{level_text(study.confidence)} t band)",
        fontsize=FONT_SIZE + 1,
    )
    return _png(fig)


def pretraining_curve_table(study: Study, dataset: str, protocol: str) -> Table | None:
    """Rows: variants; columns: scored epochs; the best mean of each column in bold."""
    curves = variant_curves(study, dataset, protocol)
    if not curves:
        return None
    epochs = sorted({e for by_epoch in curves.values() for e in by_epoch})
    table = Table(header=["variant", *(f"epoch {e}" for e in epochs)], rows=[])
    for variant in sorted(curves, key=lambda v: v.label):
        row = [variant.label]
        for e in epochs:
            s = curves[variant].get(e)
            row.append("–" if s is None else _text(s))
        table.rows.append(row)
    for column, e in enumerate(epochs, start=1):
        means = [(curves[v][e].mean, r) for r, v in enumerate(sorted(curves, key=lambda v: v.label))
                 if e in curves[v]]  # fmt: skip
        if means:
            table.bold.add((max(means)[1], column))
    table.notes.append(
        f"val/{protocol} AUROC scored every trainer.eval_every epochs during pretraining "
        f"(train_log.jsonl), mean ± {level_text(study.confidence)} t half-width over "
        "pretrainings (n)."
    )
    return table


def _text(s: Estimate) -> str:
    spread = f" ± {s.half_width:.3f}" if s.half_width is not None else ""
    return f"{s.mean:.3f}{spread} (n={s.n})"
