"""Where medssl's configs live: `conf/` ships inside the package (in a checkout it is a link to
the repository's top-level `conf/`), so an installed wheel's CLIs find it like a checkout's.

Importing this module registers the schema the primary configs name in their defaults lists
(medssl.config_schema) and the resolver config.yaml's folder names use, so whatever finds
`conf/` here can compose it.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from medssl.config_roles import folder_name_exclusions
from medssl.config_schema import check_config, register_schemas
from medssl.job_folder import job_folder_name

register_schemas()
# conf/config.yaml names a sweep job's folder by its overrides minus the bookkeeping keys.
OmegaConf.register_new_resolver(
    "medssl_folder_name_exclusions", folder_name_exclusions, use_cache=True, replace=True
)
# ...and keeps that name within what a file system allows in one folder name.
OmegaConf.register_new_resolver("medssl_folder_name", job_folder_name, replace=True)


def config_dir() -> Path:
    """The folder holding config.yaml and the config groups."""
    return Path(__file__).parent / "conf"


def compose_config(overrides: list[str] | None = None, name: str = "config"):
    """The config `python train.py OVERRIDES` would run, for scripts and benchmarks, checked
    as the CLIs check it (medssl.config_schema.check_config)."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose(config_name=name, overrides=overrides or [])
    check_config(cfg)
    return cfg
