"""Pretrain an encoder without labels and evaluate it with a fraction of them.

python train.py method=vicreg backbone=resnet50 label_frac=0.05
python train.py -m label_frac=0.01,0.05,0.1
"""

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from medssl.errors import run_or_exit
from medssl.run import run


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float:
    results = run_or_exit(run, cfg, HydraConfig.get().runtime.output_dir)
    # Returned for Hydra sweepers that optimise a metric.
    return results.get(f"val/{cfg.optimize_metric}", float("nan"))


if __name__ == "__main__":
    main()
