"""The study report of a sweep: per dataset and protocol, every variant's metrics by label
fraction with Student-t intervals over seeds, paired differences against the supervised
baseline, figures, and the failed or missing runs. Which metrics, and the intervals' level,
are `ReportOptions` (conf/report.yaml).

`write_report(folder)` writes `report.md`, `report.html`, `runs.csv`, `summary.csv` and the
figures (`label_efficiency_<metric>.png`, `ablation_<metric>.png`) into `out` (default: the
folder). `python -m medssl.cli.report` is its command line.
"""

from __future__ import annotations

import logging
from pathlib import Path

from medssl.atomic_files import write_bytes
from medssl.configs import config_dir
from medssl.study.report.cells import Study
from medssl.study.report.collect import collect_runs
from medssl.study.report.contents import report_blocks, title
from medssl.study.report.csv_tables import runs_csv, summary_csv
from medssl.study.report.document import Figure, to_markdown
from medssl.study.report.html import to_html
from medssl.study.report.metrics import report_metrics
from medssl.study.report.options import ReportOptions, read_report_options

__all__ = ["ReportOptions", "read_report_options", "report_options_file", "write_report"]

log = logging.getLogger(__name__)


def report_options_file() -> Path:
    """conf/report.yaml, where the report's options live."""
    return config_dir() / "report.yaml"


def write_report(
    folder: Path, options: ReportOptions | None = None, out: Path | None = None
) -> Path:
    """Writes the report of every run under `folder` and returns the path of `report.md`.

    `options`: the intervals' level and the metrics to tabulate; None: conf/report.yaml's."""
    folder = Path(folder)
    out = Path(out) if out is not None else folder
    options = options or read_report_options(report_options_file())
    study = Study(folder, collect_runs(folder), confidence=options.confidence)
    keys = report_metrics(study.result_keys, options.metrics)
    blocks = report_blocks(study, keys)
    for figure in (b for b in blocks if isinstance(b, Figure)):
        write_bytes(out / figure.filename, figure.png)
    write_bytes(out / "report.md", to_markdown(blocks).encode())
    write_bytes(out / "report.html", to_html(title(study), blocks).encode())
    write_bytes(out / "runs.csv", runs_csv(study).encode())
    write_bytes(out / "summary.csv", summary_csv(study, keys).encode())
    log.info(
        "Report of %d runs (%d failed) in %d cells written to %s",
        len(study.runs),
        len(study.failed),
        len(study.cells),
        out,
    )
    return out / "report.md"
