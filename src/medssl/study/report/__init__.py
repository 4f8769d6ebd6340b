"""The study report of a sweep: per dataset and protocol, every variant's metrics by label
fraction with Student-t intervals over seeds, paired differences against the supervised
baseline, figures, and the failed or missing runs. Which metrics, and the intervals' level,
are `ReportOptions` (conf/report.yaml).

`write_report(folder)` writes `report.md`, `report.html`, `runs.csv`, `summary.csv` and the
figures (`label_efficiency_<metric>.png`, `ablation_<metric>.png`) into `out` (default: the
folder). `python -m medssl.cli.report` is its command line; with `--wandb` the same report
goes to Weights & Biases (`wandb_summary.publish_report`). An Optuna sweep folder (an
`optuna.db` beside the trials) gets a section on its search (`optuna_trials`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from medssl.atomic_files import write_bytes
from medssl.configs import config_dir
from medssl.study.report.cells import Study
from medssl.study.report.collect import collect_runs
from medssl.study.report.contents import report_blocks, title
from medssl.study.report.csv_tables import runs_csv, summary_csv
from medssl.study.report.document import Block, Figure, to_markdown
from medssl.study.report.html import to_html
from medssl.study.report.metrics import report_metrics
from medssl.study.report.options import ReportOptions, read_report_options
from medssl.study.report.optuna_trials import optuna_blocks

__all__ = [
    "ReportOptions",
    "SweepReport",
    "compose_report",
    "read_report_options",
    "report_options_file",
    "save_report",
    "write_report",
]

log = logging.getLogger(__name__)


def report_options_file() -> Path:
    """conf/report.yaml, where the report's options live."""
    return config_dir() / "report.yaml"


@dataclass(frozen=True)
class SweepReport:
    """A sweep's report as composed: its runs as a `Study`, the metrics it tabulates, its blocks
    (what report.md and report.html say) and the folder it is written to."""

    study: Study
    metrics: list[str]
    blocks: list[Block]
    out: Path

    @property
    def figures(self) -> list[Figure]:
        return [block for block in self.blocks if isinstance(block, Figure)]

    @property
    def files(self) -> list[Path]:
        """The files `save_report` writes besides the figures."""
        return [self.out / name for name in ("report.md", "report.html", "runs.csv", "summary.csv")]


def compose_report(
    folder: Path, options: ReportOptions | None = None, out: Path | None = None
) -> SweepReport:
    """The report of every run under `folder`, to be written into `out` (default: the folder).

    `options`: the intervals' level and the metrics to tabulate; None: conf/report.yaml's."""
    folder = Path(folder)
    options = options or read_report_options(report_options_file())
    study = Study(folder, collect_runs(folder), confidence=options.confidence)
    keys = report_metrics(study.result_keys, options.metrics)
    blocks = report_blocks(study, keys) + optuna_blocks(study)
    return SweepReport(study, keys, blocks, Path(out) if out is not None else folder)


def save_report(report: SweepReport) -> Path:
    """Writes the report's files and figures; returns the path of `report.md`."""
    out, study = report.out, report.study
    for figure in report.figures:
        write_bytes(out / figure.filename, figure.png)
    write_bytes(out / "report.md", to_markdown(report.blocks).encode())
    write_bytes(out / "report.html", to_html(title(study), report.blocks).encode())
    write_bytes(out / "runs.csv", runs_csv(study).encode())
    write_bytes(out / "summary.csv", summary_csv(study, report.metrics).encode())
    log.info(
        "Report of %d runs (%d failed) in %d cells written to %s",
        len(study.runs),
        len(study.failed),
        len(study.cells),
        out,
    )
    return out / "report.md"


def write_report(
    folder: Path, options: ReportOptions | None = None, out: Path | None = None
) -> Path:
    """Composes and writes the report of every run under `folder`; returns `report.md`'s path."""
    return save_report(compose_report(folder, options, out))
