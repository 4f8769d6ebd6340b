"""`medssl-train` (and the repository's `train.py`): pretrain an encoder without labels and
evaluate it with a fraction of them.

medssl-train method=vicreg backbone=resnet50 label_frac=0.05
medssl-train -m +experiment=label_efficiency dataset=pneumoniamnist
"""

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from medssl.config_schema import check_config
from medssl.configs import config_dir
from medssl.errors import run_or_exit
from medssl.override_hints import override_hint
from medssl.study.job import run_job
from medssl.study.optuna_search import objective, register_resolvers

# The Optuna sweeper's config (conf/hydra/sweeper/optuna_search.yaml) resolves through these.
register_resolvers()

# conf/config.yaml plus the check of the output folder that must run before Hydra writes
# into it (study.folder_guard).
ConfigStore.instance().store(
    name="train",
    node={
        "defaults": ["config", "_self_"],
        "hydra": {
            "callbacks": {"folder_guard": {"_target_": "medssl.study.folder_guard.FolderGuard"}}
        },
    },
)


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="train")
def train(cfg: DictConfig) -> float | None:
    # Imported here: a command refused before the run (study.folder_guard) never waits for torch.
    import torch

    from medssl.run import run
    from medssl.training.device import cpu_threads_per_job
    from medssl.training.distributed import process_rank

    run_or_exit(check_config, cfg)
    hydra_cfg = HydraConfig.get()
    # Parallel jobs on one machine (joblib) share its cores instead of each taking all of them.
    threads = cpu_threads_per_job(hydra_cfg.launcher.get("n_jobs"))
    if threads is not None:
        torch.set_num_threads(threads)
    choices = {k: v for k, v in hydra_cfg.runtime.choices.items() if not k.startswith("hydra")}
    rank = process_rank()
    results = run_or_exit(
        run_job,
        run,
        cfg,
        Path(hydra_cfg.runtime.output_dir),
        choices=choices,
        multirun=hydra_cfg.mode == RunMode.MULTIRUN,
        rank=rank,
    )
    # Returned for Hydra sweepers that optimise a metric (hydra/sweeper=optuna_search).
    return objective(results, cfg.optimize_metric, rank=rank)


def main() -> None:
    # On a full disk the log file cannot be written: the sentence on the console is enough,
    # without logging's own traceback for every line it drops.
    logging.raiseExceptions = False
    hint = override_hint(sys.argv[1:], "train")
    if hint:
        logging.getLogger("medssl").error("%s", hint)
        sys.exit(1)
    train()


if __name__ == "__main__":
    main()
