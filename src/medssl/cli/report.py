"""Report a sweep: tables with Student-t intervals over seeds, paired differences, figures, CSVs.

    python -m medssl.cli.report multirun/label_efficiency/pneumoniamnist [--metric KEY ...]
        [--confidence LEVEL] [--out DIR]

Writes `report.md`, `report.html`, `runs.csv`, `summary.csv` and PNG figures into `--out`
(default: the sweep folder) and prints the markdown; see `medssl.study.report`. The intervals'
level and the metrics come from conf/report.yaml; `--confidence` and `--metric` override them.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from medssl.errors import MedsslError
from medssl.study.report import (
    ReportOptions,
    read_report_options,
    report_options_file,
    write_report,
)


def argument_parser(options: ReportOptions, source: Path) -> argparse.ArgumentParser:
    """The command line, its help naming the options `source` holds."""
    parser = argparse.ArgumentParser(
        prog="python -m medssl.cli.report", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "folder", type=Path, help="a sweep folder (multirun/...) or any folder of runs"
    )
    parser.add_argument(
        "--metric",
        action="append",
        help="a results.json key, e.g. test/linear/auroc, or a metric name, e.g. auroc, for every "
        f"protocol; repeat for several (default, from {source}: {', '.join(options.metrics)})",
    )
    parser.add_argument(
        "--confidence",
        type=float,
        help=f"level of every interval, e.g. 0.9 (default, from {source}: {options.confidence})",
    )
    parser.add_argument("--out", type=Path, default=None, help="where to write (default: FOLDER)")
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        source = report_options_file()
        configured = read_report_options(source)
        args = argument_parser(configured, source).parse_args(argv)
        options = configured.overridden(confidence=args.confidence, metrics=args.metric)
        try:
            path = write_report(args.folder, options, args.out)
        except OSError as error:  # --out under a file, an unreadable run, a full disk
            where = error.filename or args.out or args.folder
            raise MedsslError(f"{where}: {error.strerror or error}.") from None
    except MedsslError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(path.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
