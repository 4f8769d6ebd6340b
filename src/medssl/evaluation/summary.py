"""`summary.md`: the main table of a run, one row per protocol, for a reader who opens the folder."""

from __future__ import annotations

import logging
import math
from pathlib import Path

from medssl.atomic_files import write_json

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
    lines += ["", "All numbers are in `results.json`; figures are in `figures/`.", ""]
    return "\n".join(lines)


def write_summary(path: Path, results: dict) -> None:
    Path(path).write_text(summary_markdown(results))


def write_results(run_dir: Path, results: dict) -> None:
    """`results.json` (every number, flat keys) and `summary.md` (the main tables) of a run."""
    write_json(Path(run_dir) / "results.json", results)
    write_summary(Path(run_dir) / "summary.md", results)
    log.info("Results written to %s", Path(run_dir) / "results.json")
