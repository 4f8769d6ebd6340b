"""Compare the runs of a sweep: one table and one label-efficiency plot from their results.json.

    python -m medssl.sweep_report multirun/2026-11-22/10-00-00 [--metric test/linear/auroc] [--out DIR]

Runs are grouped by (dataset, method, backbone, label_frac); seeds are averaged with their
standard deviation. Writes `report.md`, `report.csv` and `label_efficiency.png` into `--out`
(default: the sweep folder).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import math
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from medssl.atomic_files import write_bytes
from medssl.errors import MedsslError

log = logging.getLogger(__name__)

GROUP_KEYS = ("dataset", "method", "backbone", "label_frac")
DEFAULT_METRICS = ("test/linear/auroc", "test/linear/acc", "test/linear/ece")


def collect(folder: Path) -> list[dict]:
    runs = []
    for path in sorted(Path(folder).rglob("results.json")):
        try:
            runs.append(json.loads(path.read_text()))
        except json.JSONDecodeError:
            log.warning("Skipping unreadable %s", path)
    if not runs:
        raise MedsslError(
            f"no results.json under {folder}; point the report at a run or sweep folder."
        )
    return runs


def summarise(runs: list[dict], metrics: tuple[str, ...]) -> list[dict]:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for result in runs:
        groups[tuple(result.get(k) for k in GROUP_KEYS)].append(result)
    rows = []
    for key, members in sorted(groups.items(), key=lambda item: tuple(str(v) for v in item[0])):
        row = dict(zip(GROUP_KEYS, key))
        row["runs"] = len(members)
        for metric in metrics:
            values = [
                m[metric]
                for m in members
                if isinstance(m.get(metric), (int, float)) and math.isfinite(m[metric])
            ]
            row[metric] = float(np.mean(values)) if values else None
            row[f"{metric} std"] = float(np.std(values, ddof=1)) if len(values) > 1 else None
        rows.append(row)
    return rows


def to_markdown(rows: list[dict], metrics: tuple[str, ...]) -> str:
    header = [*GROUP_KEYS, "runs", *metrics]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [str(row[k]) for k in (*GROUP_KEYS, "runs")]
        for metric in metrics:
            mean, std = row[metric], row[f"{metric} std"]
            cells.append(
                "–"
                if mean is None
                else f"{mean:.3f}" + (f" ± {std:.3f}" if std is not None else "")
            )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def to_csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def plot_label_efficiency(rows: list[dict], metric: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.2))
    series: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        if row[metric] is not None:
            series[(row["dataset"], row["method"], row["backbone"])].append(row)
    for (dataset, method, backbone), points in sorted(series.items()):
        points.sort(key=lambda r: r["label_frac"])
        x = [100 * p["label_frac"] for p in points]
        y = [p[metric] for p in points]
        err = [p[f"{metric} std"] or 0.0 for p in points]
        ax.errorbar(
            x, y, yerr=err, marker="o", capsize=3, label=f"{method} ({backbone}, {dataset})"
        )
    ax.set_xscale("log")
    ticks = sorted({100 * row["label_frac"] for row in rows})
    ax.set_xticks(ticks, [f"{t:g}%" for t in ticks])
    ax.minorticks_off()
    ax.set_xlabel("labelled training images (%)")
    ax.set_ylabel(metric)
    ax.set_title(f"Label efficiency: {metric}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    plt.close(fig)
    write_bytes(path, buffer.getvalue())


def write_report(
    folder: Path, metrics: tuple[str, ...] = DEFAULT_METRICS, out: Path | None = None
) -> Path:
    out = Path(out or folder)
    rows = summarise(collect(folder), metrics)
    markdown = f"# Sweep report: {folder}\n\nMean ± std over seeds.\n\n" + to_markdown(
        rows, metrics
    )
    write_bytes(out / "report.md", markdown.encode())
    write_bytes(out / "report.csv", to_csv(rows).encode())
    plot_label_efficiency(rows, metrics[0], out / "label_efficiency.png")
    log.info("Report of %d groups written to %s", len(rows), out)
    return out / "report.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m medssl.sweep_report", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "folder", type=Path, help="a sweep folder (multirun/...) or any folder of runs"
    )
    parser.add_argument(
        "--metric",
        action="append",
        help="results.json key; repeat for several (first one is plotted)",
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        path = write_report(args.folder, tuple(args.metric or DEFAULT_METRICS), args.out)
    except MedsslError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(path.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
