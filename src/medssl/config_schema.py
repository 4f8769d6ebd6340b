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


# What each key does to a result, said once. Everything that asks "does this key change a
# result?" derives its answer from here (medssl.config_roles): the encoder cache key, the
# skip-done hash, the sweep folder names and the report's variant names.
#   PRETRAINING  shapes the encoder: it keys the encoder cache, so a change pretrains again.
#   EVALUATION   shapes what the job measures from the encoder: the encoder is reused, the
#                job runs again and the report names a separate variant.
#   BOOKKEEPING  speed, paths, logging, figures, launching: nothing re-runs, no variant.
# A path covers the keys below it unless a longer path says otherwise. The images and labels
# pretraining sees enter the cache key by content digest (medssl.study.encoder_cache), so
# the dataset keys that shape them are PRETRAINING here and need no config value in the key.
PRETRAINING, EVALUATION, BOOKKEEPING = "pretraining", "evaluation", "bookkeeping"
ROLES = {
    "method": PRETRAINING,
    "backbone": PRETRAINING,
    "augmentation": PRETRAINING,
    # Choices that edit other groups' keys (conf/ablation/ the augmentation, conf/init/ the
    # backbone's weights): named here so that the report pairs an SSL recipe with supervised
    # whatever its own ablation or initialisation.
    "ablation": PRETRAINING,
    "init": PRETRAINING,
    "augmentation.cpu_threads": BOOKKEEPING,  # CPU workers for the CPU path: speed only
    "optimizer": PRETRAINING,
    "scheduler": PRETRAINING,
    "seed": PRETRAINING,
    "trainer.epochs": PRETRAINING,
    "trainer.batch_size": PRETRAINING,
    "trainer.accumulate_steps": PRETRAINING,
    "trainer.precision": PRETRAINING,  # keyed as resolved (auto -> bf16 or fp32)
    "dataset": PRETRAINING,
    "dataset.positive_class": EVALUATION,
    "dataset.references": BOOKKEEPING,  # published numbers the report draws beside ours
    "dataset.root": BOOKKEEPING,
    "dataset.store_dir": BOOKKEEPING,
    "dataset.download": BOOKKEEPING,
    "dataset.cache": BOOKKEEPING,
    "pretrain_dataset": PRETRAINING,
    "pretrain_dataset.positive_class": BOOKKEEPING,  # it is never scored
    "pretrain_dataset.references": BOOKKEEPING,
    "pretrain_dataset.root": BOOKKEEPING,
    "pretrain_dataset.store_dir": BOOKKEEPING,
    "pretrain_dataset.download": BOOKKEEPING,
    "pretrain_dataset.cache": BOOKKEEPING,
    "label_frac": EVALUATION,
    "label_seed": EVALUATION,
    "eval": EVALUATION,
    "eval.analyses.shift_dataset.references": BOOKKEEPING,
    "eval.analyses.shift_dataset.root": BOOKKEEPING,
    "eval.analyses.shift_dataset.store_dir": BOOKKEEPING,
    "eval.analyses.shift_dataset.download": BOOKKEEPING,
    "eval.analyses.shift_dataset.cache": BOOKKEEPING,
    "eval_outputs": BOOKKEEPING,  # figures, CAMs, galleries, embeddings
    "eval_outputs.n_bins": EVALUATION,  # calibration errors are measured in these bins
    "eval_outputs.positive_class": EVALUATION,
    "trainer.eval_every": EVALUATION,  # val probes during pretraining: a curve, same encoder
    "trainer.collapse_min_std": EVALUATION,
    "trainer.collapse_min_rank": EVALUATION,
    "trainer.online_probe": BOOKKEEPING,  # a per-epoch log line on detached features
    "trainer.keep_epochs": BOOKKEEPING,
    "trainer.eval_batch_size": BOOKKEEPING,
    "trainer.device": BOOKKEEPING,
    "trainer.deterministic": BOOKKEEPING,
    "trainer.feed": BOOKKEEPING,  # the same batches bit for bit either way
    "trainer.resident_budget_gib": BOOKKEEPING,
    "trainer.checkpoint_every": BOOKKEEPING,
    "trainer.speed": BOOKKEEPING,
    "optimize_metric": BOOKKEEPING,
    "skip_done": BOOKKEEPING,
    "cache": BOOKKEEPING,
    "logger": BOOKKEEPING,
    "hydra": BOOKKEEPING,
}
# Keys a study varies within one recipe: a report places runs along them (columns, seeds
# averaged in a cell) rather than naming a variant. A nested `seed` follows the run's seed.
AXES = ("label_frac", "seed", "label_seed")


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
