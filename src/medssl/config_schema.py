"""The shape of the top-level config, checked by Hydra when it composes one.

Hydra's "structured config schema" pattern: the primary config names a dataclass from the
ConfigStore first in its defaults list (conf/config.yaml: `- train_schema`), so every key it and
its options write is checked against these fields. A misspelt key (`trainer.epoch=3`, also
with `+`; `label_fracc: 0.1` in an experiment file) or a value of the wrong type
(`trainer.epochs=abc`) fails at composition with Hydra's message, before anything runs.

The schema holds no values: every field is MISSING, so the YAML stays the one home of every
default. The groups built by `_target_` (method, backbone, dataset, augmentation, eval,
eval_outputs, optimizer, scheduler, pretrain_dataset, logger) are left open (`Any`): their keys are the
keyword arguments of their targets, which instantiate checks.
"""

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, ValidationError

from medssl.errors import MedsslError


@dataclass
class SpeedConfig:
    """`trainer.speed`: built into medssl.training.speed.SpeedOptions."""

    _target_: str = MISSING
    compile: bool = MISSING
    channels_last: bool = MISSING
    tf32: bool = MISSING


@dataclass
class TrainerConfig:
    epochs: int = MISSING
    batch_size: int = MISSING
    accumulate_steps: int = MISSING
    online_probe: bool = MISSING
    collapse_min_std: float = MISSING
    collapse_min_rank: float = MISSING
    eval_batch_size: int = MISSING
    eval_every: int | None = MISSING
    keep_epochs: list[int] = MISSING
    device: str = MISSING
    precision: str = MISSING
    deterministic: bool = MISSING
    feed: str = MISSING
    resident_budget_gib: float | None = MISSING
    checkpoint_every: float | None = MISSING
    speed: SpeedConfig = field(default_factory=SpeedConfig)


@dataclass
class CacheConfig:
    enabled: bool = MISSING
    dir: str = MISSING


@dataclass
class TrainConfig:
    """conf/config.yaml: what `train.py` (`medssl-train`) composes."""

    # Groups chosen in the defaults list; `null` choices (pretrain_dataset, logger) are set to
    # null in config.yaml so the key is there to merge an option into.
    method: Any = MISSING
    backbone: Any = MISSING
    dataset: Any = MISSING
    pretrain_dataset: Any = MISSING
    augmentation: Any = MISSING
    eval: Any = MISSING
    eval_outputs: Any = MISSING
    logger: Any = MISSING
    optimizer: Any = MISSING
    scheduler: Any = MISSING

    label_frac: float = MISSING
    seed: int = MISSING
    label_seed: int = MISSING
    optimize_metric: str = MISSING
    skip_done: bool = MISSING
    cache: CacheConfig = field(default_factory=CacheConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)


@dataclass
class EvaluateConfig(TrainConfig):
    """`python -m medssl.cli.evaluate`: the training config plus the encoder to evaluate."""

    ckpt: str = MISSING


@dataclass
class InspectOptions:
    tiles_per_class: int = MISSING
    duplicate_examples: int = MISSING


@dataclass
class InspectConfig(TrainConfig):
    """conf/inspect.yaml (`python -m medssl.cli.inspect`): the training config plus its own keys."""

    out: str = MISSING
    inspect: InspectOptions = field(default_factory=InspectOptions)


# The names the defaults lists use. A schema extending another comes after the config that
# names the base one (`- config`, then `- evaluate_schema`): a subclass may be merged onto its
# base, not the other way round; all-MISSING fields keep the values merged before them.
SCHEMAS = {
    "train_schema": TrainConfig,
    "evaluate_schema": EvaluateConfig,
    "inspect_schema": InspectConfig,
}


def register_schemas() -> None:
    """Store the schemas in Hydra's ConfigStore (idempotent; medssl.configs calls it)."""
    store = ConfigStore.instance()
    for name, schema in SCHEMAS.items():
        store.store(name=name, node=schema)


def check_config(cfg: DictConfig) -> None:
    """Refuse a key its schema lacks. Composition checks every key the YAML files and plain
    overrides set, but Hydra's `+key=value` adds a key past any schema (force-add), so a
    misspelt `+trainer.epoch=3` would otherwise be ignored without a word."""
    schema = OmegaConf.get_type(cfg)
    if schema not in SCHEMAS.values():
        return
    keys = OmegaConf.to_container(cfg, resolve=False)  # as plain data: no flags, no type
    keys.pop("hydra", None)
    try:
        OmegaConf.merge(schema, keys)
    except (ConfigKeyError, ValidationError) as error:
        raise MedsslError(
            f"{error.full_key}: {str(error).splitlines()[0]} (the config schema, "
            f"{schema.__module__}); a `+` override cannot add a key the schema lacks."
        ) from None
