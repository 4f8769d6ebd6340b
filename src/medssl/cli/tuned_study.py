"""The label-efficiency study with each method's recipe first searched on val.

    python -m medssl.cli.tuned_study [--n-trials N] [--search-epochs E] [OVERRIDES ...]
    make tuned-study ARGS="dataset=dermamnist backbone=smallcnn"

Stage 1 searches each method's recipe on val (Optuna, conf/search/<method>.yaml), stage 2 runs the
label-efficiency grid with each method's best recipe into <folder>/<dataset>/grid and reports
it. Its settings come from conf/tuned_study.yaml; OVERRIDES (dataset=..., backbone=...,
hydra/launcher=slurm) reach every train.py sweep. A second start continues where the first
stopped: the searches are topped up, finished grid jobs are skipped.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from omegaconf import OmegaConf

from medssl.configs import config_dir
from medssl.errors import MedsslError


def study_settings():
    return OmegaConf.load(config_dir() / "tuned_study.yaml")


def dataset_name(overrides: list[str]) -> str:
    """The name the study's folder takes: the dataset config's `name` after the overrides."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    import medssl.configs  # noqa: F401  registers the schema conf/config.yaml names

    train_overrides = [o for o in overrides if not o.startswith(("hydra.", "hydra/"))]
    try:
        with initialize_config_dir(str(config_dir()), version_base="1.3"):
            return str(compose("config", overrides=train_overrides).dataset.name)
    except (HydraException, OmegaConfBaseException) as error:
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise MedsslError(f"{' '.join(overrides)}: {first_line}") from None


def argument_parser(settings) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m medssl.cli.tuned_study", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--n-trials", type=int, help=f"trials per method (default: {settings.n_trials})"
    )
    parser.add_argument(
        "--search-epochs",
        type=int,
        help="pretraining epochs of each search trial (default: the search preset's)",
    )
    parser.add_argument(
        "--tuned",
        help=f"methods searched first, comma-separated (default: {','.join(settings.tuned)})",
    )
    parser.add_argument(
        "--untuned",
        help=f"methods run as configured (default: {','.join(settings.untuned)}; '' for none)",
    )
    parser.add_argument("overrides", nargs="*", help="train.py overrides for every stage")
    return parser


def _methods(given: str | None, configured) -> list[str]:
    if given is None:
        return list(configured)
    return [name for name in given.split(",") if name]


def main(argv: list[str] | None = None) -> int:
    from medssl.study.tuned_study import TunedStudy, run_study

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = study_settings()
    args = argument_parser(settings).parse_args(argv)
    if args.n_trials is not None and args.n_trials < 1:
        print("error: --n-trials must be 1 or more.", file=sys.stderr)
        return 1
    try:
        study = TunedStudy(
            folder=Path(settings.folder) / dataset_name(args.overrides),
            search_preset=settings.search_preset,
            grid_preset=settings.grid_preset,
            tuned=_methods(args.tuned, settings.tuned),
            untuned=_methods(args.untuned, settings.untuned),
            n_trials=settings.n_trials if args.n_trials is None else args.n_trials,
            search_epochs=args.search_epochs
            if args.search_epochs is not None
            else settings.search_epochs,
            significant_digits=settings.significant_digits,
            overrides=list(args.overrides),
        )
        failed = run_study(study)
        from medssl.cli.report import main as report

        written = report([str(study.grid_folder)])
        if failed:
            print(
                f"error: a grid job of {', '.join(failed)} failed; the report lists it",
                file=sys.stderr,
            )
            return 1
        return written
    except MedsslError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
