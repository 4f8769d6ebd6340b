"""Report a sweep: tables with 95 % intervals over seeds, paired differences, figures, CSVs.

    python -m medssl.cli.report multirun/label_efficiency/pneumoniamnist [--metric KEY ...] [--out DIR]

Writes `report.md`, `report.html`, `runs.csv`, `summary.csv` and PNG figures into `--out`
(default: the sweep folder) and prints the markdown; see `medssl.study.report`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from medssl.errors import MedsslError
from medssl.study.report import write_report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m medssl.cli.report", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "folder", type=Path, help="a sweep folder (multirun/...) or any folder of runs"
    )
    parser.add_argument(
        "--metric",
        action="append",
        help="results.json key, e.g. test/linear/auroc; repeat for several "
        "(default: AUROC, ACC, balanced ACC, ECE after scaling, AURC of every protocol)",
    )
    parser.add_argument("--out", type=Path, default=None, help="where to write (default: FOLDER)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        try:
            path = write_report(args.folder, args.metric, args.out)
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
