"""Report a sweep: tables with Student-t intervals over seeds, paired differences, figures, CSVs.

    python -m medssl.cli.report multirun/label_efficiency/pneumoniamnist [--metric KEY ...]
        [--confidence LEVEL] [--out DIR] [--wandb [KEY=VALUE ...]]

Writes `report.md`, `report.html`, `runs.csv`, `summary.csv` and PNG figures into `--out`
(default: the sweep folder) and prints the markdown; see `medssl.study.report`. The intervals'
level and the metrics come from conf/report.yaml; `--confidence` and `--metric` override them.
`--wandb` also logs the report to the sweep's W&B group as one `job_type=report` run and builds
a W&B Report (docs/wandb.md), with conf/logger/wandb.yaml's settings (offline by default) and
the given overrides of them, e.g. `--wandb mode=online entity=my-team`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from medssl.configs import config_dir
from medssl.errors import MedsslError
from medssl.study.report import (
    ReportOptions,
    compose_report,
    read_report_options,
    report_options_file,
    save_report,
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
    parser.add_argument(
        "--wandb",
        nargs="*",
        metavar="KEY=VALUE",
        help="also log the report to W&B (conf/logger/wandb.yaml; KEY=VALUE overrides it, "
        "e.g. mode=online)",
    )
    return parser


def wandb_logger(overrides: list[str]):
    """conf/logger/wandb.yaml with the command line's `key=value` overrides."""
    try:
        logger = OmegaConf.load(config_dir() / "logger" / "wandb.yaml")
        return OmegaConf.merge(logger, OmegaConf.from_dotlist(overrides))
    except (OmegaConfBaseException, ValueError) as error:
        raise MedsslError(f"--wandb {' '.join(overrides)}: {error}".replace("\n", " ")) from None


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        source = report_options_file()
        configured = read_report_options(source)
        args = argument_parser(configured, source).parse_args(argv)
        options = configured.overridden(confidence=args.confidence, metrics=args.metric)
        try:
            report = compose_report(args.folder, options, args.out)
            path = save_report(report)
            if args.wandb is not None:
                from medssl.study.report.wandb_summary import publish_report, report_tracker

                publish_report(report, report_tracker(wandb_logger(args.wandb)))
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
