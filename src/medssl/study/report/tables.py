"""The report's tables: a metric per variant and label fraction, and the paired differences
against the supervised baseline (or, in an ablation without one, against its recipe)."""

from __future__ import annotations

from medssl.study.report.cells import Cell, Study, reference_notes
from medssl.study.report.document import Table
from medssl.study.report.metrics import display_name, lower_is_better
from medssl.study.report.stats import Estimate, PairedDifference, level_text, paired_difference
from medssl.study.report.variants import Variant

NO_RUN = "–"


def percent(label_frac: float) -> str:
    return f"{100 * label_frac:g} %"


def metric_table(study: Study, dataset: str, metric: str) -> Table:
    """Rows: variants; columns: label fractions; cells: mean ± t half-width at the study's
    confidence (n=seeds)."""
    fractions = study.fractions_in(dataset)
    variants = [v for v in study.variants_in(dataset) if study.reports(dataset, v, metric)]
    table = Table(header=["variant", *map(percent, fractions)], rows=[])
    estimates: dict[tuple[int, int], Estimate] = {}
    for r, variant in enumerate(variants):
        row = [variant.label]
        for c, frac in enumerate(fractions, start=1):
            cell = study.cell(dataset, variant, frac)
            row.append(cell_text(cell, metric))
            if cell is not None and (summary := cell.estimate(metric)) is not None:
                estimates[(r, c)] = summary
        table.rows.append(row)
    table.bold = _best_per_column(estimates, lower_is_better(metric))
    references = study.references(dataset, metric)
    for reference in references:
        table.rows.append([reference.label, *[f"{reference.value:.3f}"] * len(fractions)])
    table.notes += reference_notes(references)
    return table


def cell_text(cell: Cell | None, metric: str) -> str:
    if cell is None:
        return NO_RUN
    if not cell.finished:
        return "failed"
    summary = cell.estimate(metric)
    if summary is None:
        text = "n/a"  # finished, but the metric is undefined (e.g. one class in the test split)
    elif summary.half_width is None:
        text = f"{summary.mean:.3f} (n={summary.n})"
    else:
        text = f"{summary.mean:.3f} ± {summary.half_width:.3f} (n={summary.n})"
    return text + (f" ({len(cell.failed)} failed)" if cell.failed else "")


def paired_table(study: Study, dataset: str, metric: str) -> Table | None:
    """Variant minus its supervised baseline, seed by seed; None without a supervised variant."""
    if not any(v.is_supervised for v in study.variants_in(dataset)):
        return None
    fractions = study.fractions_in(dataset)
    table = Table(header=["variant − supervised", *map(percent, fractions)], rows=[])
    unmatched, pairs = [], []
    for variant in study.variants_in(dataset):
        if not study.reports(dataset, variant, metric):
            continue
        baseline = study.baseline_of(dataset, variant)
        if baseline is None:
            if not variant.is_supervised:
                unmatched.append(variant.label)
            continue
        pairs.append(f"{variant.label} against {baseline.label}")
        table.rows.append(_paired_row(study, dataset, variant, baseline, fractions, metric))
    if not table.rows:
        return None
    better = "lower" if lower_is_better(metric) else "higher"
    name = display_name(metric)
    table.notes.append(
        f"Each cell: mean over seeds of (variant − supervised) in {name}, each run against the "
        "supervised run with the same label fraction, seed, label seed and evaluation "
        f"settings (its own pretraining recipe may differ), ± the {level_text(study.confidence)} t "
        f"half-width. A positive difference means the variant's {name} is higher than the "
        f"supervised baseline's ({better} is better); 'won k/n': seeds where the variant was better."
    )
    if sum(v.is_supervised for v in study.variants_in(dataset)) > 1:
        table.notes.append("Supervised baselines used: " + "; ".join(pairs) + ".")
    if unmatched:
        table.notes.append(
            "No supervised run with the same dataset, evaluation settings and backbone for: "
            + "; ".join(unmatched)
            + "."
        )
    return table


def paired_against_table(
    study: Study, dataset: str, metric: str, baseline: Variant
) -> Table | None:
    """Every other variant minus `baseline` (an ablation's recipe), seed by seed."""
    fractions = study.fractions_in(dataset)
    table = Table(header=[f"variant − {baseline.label}", *map(percent, fractions)], rows=[])
    for variant in study.variants_in(dataset):
        if variant == baseline or not study.reports(dataset, variant, metric):
            continue
        table.rows.append(_paired_row(study, dataset, variant, baseline, fractions, metric))
    if not table.rows:
        return None
    name = display_name(metric)
    better = "lower" if lower_is_better(metric) else "higher"
    table.notes.append(
        f"Each cell: mean over seeds of (variant − {baseline.label}) in {name}, each run against "
        f"the {baseline.label} run with the same seed and label seed, ± the "
        f"{level_text(study.confidence)} t half-width "
        f"({better} is better); 'won k/n': seeds where the variant was better."
    )
    return table


def _paired_row(
    study: Study,
    dataset: str,
    variant: Variant,
    baseline: Variant,
    fractions: list[float],
    metric: str,
) -> list[str]:
    """The variant's label, then its paired difference against `baseline` at each fraction."""
    row = [variant.label]
    for frac in fractions:
        pairs = study.paired_values(dataset, variant, baseline, frac, metric)
        paired = paired_difference(
            pairs, lower_is_better=lower_is_better(metric), confidence=study.confidence
        )
        row.append(_difference_text(paired))
    return row


def _difference_text(paired: PairedDifference | None) -> str:
    if paired is None:
        return NO_RUN
    d = paired.difference
    interval = f" ± {d.half_width:.3f}" if d.half_width is not None else ""
    return f"{d.mean:+.3f}{interval} (won {paired.won}/{d.n})"


def _best_per_column(estimates: dict[tuple[int, int], Estimate], lower: bool) -> set:
    best = set()
    for column in {c for _, c in estimates}:
        means = {r: e.mean for (r, c), e in estimates.items() if c == column}
        if len(means) < 2:  # a lone value is not "best" of anything
            continue
        target = min(means.values()) if lower else max(means.values())
        best |= {(r, column) for r, mean in means.items() if mean == target}
    return best
