"""What the report says, in order: the state of the sweep, then per dataset and protocol a
table per metric, the paired differences against supervised, and the figures."""

from __future__ import annotations

from medssl.study.report.cells import Study
from medssl.study.report.document import Block, BulletList, Figure, Heading, Paragraph
from medssl.study.report.figures import ablation_png, label_efficiency_png
from medssl.study.report.learned_little import learned_little_blocks
from medssl.study.report.metrics import (
    by_protocol,
    curve_metrics,
    display_name,
    file_stem,
    is_main,
    protocol_of,
    with_main_metrics,
)
from medssl.study.report.pretraining_curves import (
    PROTOCOLS,
    pretraining_curve_table,
    pretraining_curves_png,
)
from medssl.study.report.references import reference_blocks
from medssl.study.report.robustness import robustness_png
from medssl.study.report.stats import level_text, quantile_text
from medssl.study.report.tables import metric_table, paired_against_table, paired_table
from medssl.study.report.tuning import study_tuning_blocks
from medssl.study.report.variants import Variant


def how_to_read(confidence: float) -> str:
    return (
        f"Cells: mean over seeds ± half-width of the {level_text(confidence)} Student-t interval "
        f"({quantile_text(confidence)} · s / √n), n = seeds with a result; 'failed': every run of "
        "the cell failed; '–': no run. Bold: best mean of a column (lower is better for ECE, MCE, "
        "NLL, Brier score, AURC, mean absolute grade error and losses)."
    )


def title(study: Study) -> str:
    return f"Sweep report: {study.folder}"


def report_blocks(study: Study, metrics: list[str]) -> list[Block]:
    blocks: list[Block] = [
        Heading(title(study), 1),
        *_state(study),
        Paragraph(how_to_read(study.confidence)),
        *study_tuning_blocks(study.folder),
    ]
    if not metrics:
        blocks.append(Paragraph("No run has finished yet, so there is no metric to tabulate."))
    several = len(study.datasets) > 1
    for dataset in study.datasets:
        suffix = f"_{dataset}" if several else ""
        task = study.task_of(dataset)
        shown = with_main_metrics(metrics, task, study.result_keys)
        blocks.append(Heading(dataset, 2))
        blocks += learned_little_blocks(study, dataset)
        blocks += reference_blocks(study, dataset, shown, suffix)
        for protocol, keys in by_protocol(shown).items():
            keys = [k for k in keys if study.has_metric(dataset, k)]
            if not keys:
                continue
            blocks.append(Heading(f"{protocol} protocol", 3))
            for index, key in enumerate(keys):
                blocks += [
                    Heading(f"{key} ({display_name(key)})", 4),
                    metric_table(study, dataset, key),
                ]
                # Paired against supervised: the first metric, each metric the task is judged by
                # (metrics.MAIN_METRICS), and robustness (is SSL more robust?).
                if index == 0 or is_main(key, task) or key.endswith("/auroc_corrupt"):
                    blocks += _paired_blocks(study, dataset, key)
        blocks += _pretraining_curve_blocks(study, dataset)
        figures = _figures(study, dataset, shown, suffix)
        if figures:
            blocks += [Heading("Figures", 3), *figures]
    return blocks


def _paired_blocks(study: Study, dataset: str, key: str) -> list[Block]:
    """Against supervised; in an ablation without it (variants that differ by parts of one
    recipe), against the recipe itself."""
    paired = paired_table(study, dataset, key)
    if paired is not None:
        return [Heading(f"{key}: paired difference against supervised", 4), paired]
    variants = study.variants_in(dataset)
    if len(variants) < 2 or not any(v.parts for v in variants):
        return []
    baseline = baseline_variant(variants)
    paired = paired_against_table(study, dataset, key, baseline)
    if paired is None:
        return []
    return [Heading(f"{key}: paired difference against {baseline.label}", 4), paired]


def _pretraining_curve_blocks(study: Study, dataset: str) -> list[Block]:
    """Where the runs scored their encoders during pretraining (trainer.eval_every)."""
    tables = [(p, pretraining_curve_table(study, dataset, p)) for p in PROTOCOLS]
    tables = [(p, t) for p, t in tables if t is not None]
    if not tables:
        return []
    blocks: list[Block] = [Heading("Pretraining-length curves (val)", 3)]
    for protocol, table in tables:
        blocks += [Heading(f"val/{protocol}/auroc by pretraining epoch", 4), table]
    return blocks


def _state(study: Study) -> list[Block]:
    missing = study.cells_missing_seeds()
    seeds = ", ".join(map(str, study.seeds)) or "none"
    blocks: list[Block] = [
        Paragraph(
            f"{len(study.finished)} runs finished, {len(study.failed)} failed; "
            f"{len(missing)} of {len(study.cells)} cells are missing seeds (seeds in the sweep: {seeds})."
        )
    ]
    if empty := study.empty_cells():
        blocks.append(Paragraph(f"{empty} variant × label-fraction cells have no run yet (–)."))
    if study.failed:
        blocks.append(Paragraph("Failed runs:"))
        blocks.append(
            BulletList(
                [
                    f"{run.folder}: {run.error}"
                    for run in sorted(study.failed, key=lambda r: r.folder)
                ]
            )
        )
    return blocks


def _figures(study: Study, dataset: str, metrics: list[str], suffix: str) -> list[Figure]:
    figures = []
    for metric in curve_metrics(metrics, study.task_of(dataset)):
        figures += _drawn(
            label_efficiency_png(study, dataset, metric),
            f"label_efficiency_{file_stem(metric)}{suffix}.png",
            f"{dataset}: label efficiency, {metric}",
        )
    for protocol in [protocol_of(k) for k in metrics if k.endswith("/auroc_corrupt")]:
        figures += _drawn(
            robustness_png(study, dataset, protocol),
            f"robustness_{protocol}{suffix}.png",
            f"{dataset}: AUROC against corruption severity, {protocol} protocol",
        )
    figures += _drawn(
        pretraining_curves_png(study, dataset),
        f"pretraining_curves{suffix}.png",
        f"{dataset}: val AUROC during pretraining, per variant",
    )
    variants = study.variants_in(dataset)
    if metrics and (len(study.fractions_in(dataset)) <= 2 or any(v.parts for v in variants)):
        metric, baseline = metrics[0], baseline_variant(variants)
        figures += _drawn(
            ablation_png(study, dataset, metric, baseline),
            f"ablation_{file_stem(metric)}{suffix}.png",
            f"{dataset}: {metric} per variant (dashed: {baseline.label})",
        )
    return figures


def _drawn(png: bytes | None, filename: str, caption: str) -> list[Figure]:
    """The figure, or none when there was nothing to draw (`png` is None)."""
    return [] if png is None else [Figure(filename, png, caption)]


def baseline_variant(variants: list[Variant]) -> Variant:
    """The from-scratch baseline when the sweep has one, else the variant with the fewest
    departures (an ablation's recipe); ties go to the first by name."""
    return min(variants, key=lambda v: (not v.is_supervised, len(v.parts), v.label))
