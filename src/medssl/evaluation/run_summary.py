"""One run's files for a reader who opens its folder: `results.json` (every number) and
`summary.md` (the main table, one row per protocol, and the analyses' tables)."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np

from medssl.atomic_files import write_json
from medssl.evaluation.robustness import severity_curves
from medssl.evaluation.shift import shift_names

COLUMNS = (
    ("acc", "ACC"),
    ("balanced_acc", "bal. ACC"),
    ("auroc", "AUROC"),
    ("f1_macro", "macro-F1"),
    ("kappa", "kappa"),
    ("nll", "NLL"),
    ("brier", "Brier"),
    ("ece", "ECE"),
    ("ece_ts", "ECE (TS)"),
    ("aurc", "AURC"),
)
SHIFT_COLUMNS = (
    ("auroc", "AUROC"),
    ("acc", "ACC"),
    ("ece", "ECE"),
    ("ece_ts", "ECE (TS)"),
    ("aurc", "AURC"),
)

log = logging.getLogger(__name__)


def _fmt(value) -> str:
    return (
        "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"
    )


def protocols_in(results: dict) -> list[str]:
    return list(
        dict.fromkeys(
            k.split("/")[1] for k in results if k.startswith("test/") and k.endswith("/acc")
        )
    )


def summary_markdown(results: dict) -> str:
    lines = [
        f"# {results.get('method', '?')} on {results.get('dataset', '?')} ({results.get('task', '?')})",
        "",
        f"Backbone {results.get('backbone', '?')}, label_frac {results.get('label_frac', '?')}, "
        f"seed {results.get('seed', '?')}; {results.get('n/labelled', '?')} labelled training images, "
        f"{results.get('n/val', '?')} val, {results.get('n/test', '?')} test.",
        "",
        "Test metrics (val picked hyper-parameters, checkpoints and the temperature):",
        "",
        "| protocol | " + " | ".join(title for _, title in COLUMNS) + " |",
        "|---|" + "---|" * len(COLUMNS),
    ]
    for name in protocols_in(results):
        cells = [_fmt(results.get(f"test/{name}/{key}")) for key, _ in COLUMNS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    ops = [
        name for name in protocols_in(results) if f"test/{name}/op/youden/sensitivity" in results
    ]
    if ops:
        lines += [
            "",
            f"Binary operating points for positive class {results.get('positive_class', '?')!r} "
            "(threshold on its probability chosen on val, measured on test):",
            "",
            "| protocol | target | threshold | sensitivity | specificity | PPV | NPV |",
            "|---|---|---|---|---|---|---|",
        ]
        for name in ops:
            for op in ("sens0.90", "sens0.95", "spec0.90", "spec0.95", "youden"):
                cells = [
                    _fmt(results.get(f"test/{name}/op/{op}/{s}"))
                    for s in ("threshold", "sensitivity", "specificity", "ppv", "npv")
                ]
                lines.append(f"| {name} | {op} | " + " | ".join(cells) + " |")
    lines += robustness_lines(results) + shift_lines(results) + mc_dropout_lines(results)
    lines += ["", "All numbers are in `results.json`; figures are in `figures/`.", ""]
    return "\n".join(lines)


def robustness_lines(results: dict) -> list[str]:
    """Per metric, one row per protocol and corruption: clean test, then each severity."""
    curves = {
        (p, m): severity_curves(results, p, m)
        for p in protocols_in(results)
        for m in ("auroc", "acc", "ece_ts")
    }
    severities = sorted({s for c in curves.values() for pts in c.values() for s in pts[0]})
    if not any(curves.values()):
        return []
    lines = [
        "",
        "Corrupted test images (`eval.analyses.robustness`; severity 0 is the clean test set):",
    ]
    for metric, title in (("auroc", "AUROC"), ("acc", "ACC"), ("ece_ts", "ECE (TS)")):
        header = ["clean" if s == 0 else str(s) for s in severities]
        lines += [
            "",
            f"| {title} | corruption | " + " | ".join(header) + " | mean |",
            "|---|---|" + "---|" * (len(header) + 1),
        ]
        for protocol in protocols_in(results):
            rows = curves[(protocol, metric)]
            for name, (sev, values) in rows.items():
                by_severity = dict(zip(sev, values))
                cells = [_fmt(by_severity.get(s)) for s in severities]
                mean = _fmt(float(np.nanmean([v for s, v in by_severity.items() if s > 0])))
                lines.append(f"| {protocol} | {name} | " + " | ".join(cells) + f" | {mean} |")
            if rows:  # the mean over corruptions at each severity
                cells = [
                    _fmt(float(np.nanmean([dict(zip(*c)).get(s, np.nan) for c in rows.values()])))
                    for s in severities
                ]
                mean = _fmt(results.get(f"test/{protocol}/{metric}_corrupt"))
                lines.append(f"| {protocol} | **mean** | " + " | ".join(cells) + f" | {mean} |")
    return lines


def shift_lines(results: dict) -> list[str]:
    lines = []
    for dataset in shift_names(results):
        lines += [
            "",
            f"Shift to {dataset} ({results.get(f'shift/{dataset}/n', '?')} test images, "
            f"protocols as fitted on {results.get('dataset', '?')}):",
            "",
            "| protocol | images | " + " | ".join(t for _, t in SHIFT_COLUMNS) + " |",
            "|---|---|" + "---|" * len(SHIFT_COLUMNS),
        ]
        for name in protocols_in(results):
            for label, prefix in (
                (results.get("dataset", "test"), f"test/{name}"),
                (dataset, f"shift/{dataset}/{name}"),
            ):
                cells = [_fmt(results.get(f"{prefix}/{key}")) for key, _ in SHIFT_COLUMNS]
                lines.append(f"| {name} | {label} | " + " | ".join(cells) + " |")
    return lines


def mc_dropout_lines(results: dict) -> list[str]:
    names = [n for n in protocols_in(results) if f"test/{n}/mc/aurc" in results]
    if not names:
        return []
    lines = [
        "",
        "MC dropout (test; AURC of the accuracy-coverage curve, ranked by each score):",
        "",
        "| protocol | samples | MC ACC | MC AUROC | mean entropy | mean MI | AURC softmax "
        "| AURC MC entropy | AURC MC MI |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for n in names:
        cells = [
            results.get(f"{n}/mc/samples", "?"),
            *(
                _fmt(results.get(k))
                for k in (
                    f"test/{n}/mc/acc",
                    f"test/{n}/mc/auroc",
                    f"test/{n}/mc/entropy_mean",
                    f"test/{n}/mc/mutual_info_mean",
                    f"test/{n}/aurc",
                    f"test/{n}/mc/aurc",
                    f"test/{n}/mc/aurc_mi",
                )
            ),
        ]
        lines.append(f"| {n} | " + " | ".join(map(str, cells)) + " |")
    return lines


def write_summary(path: Path, results: dict) -> None:
    Path(path).write_text(summary_markdown(results))


def write_results(run_dir: Path, results: dict) -> None:
    """`results.json` (every number, flat keys) and `summary.md` (the main tables) of a run."""
    write_json(Path(run_dir) / "results.json", results)
    write_summary(Path(run_dir) / "summary.md", results)
    log.info("Results written to %s", Path(run_dir) / "results.json")
