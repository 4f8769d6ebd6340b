"""Answers to "does this key change a result?", all derived from `config_schema.ROLES`.

The encoder cache key keeps the PRETRAINING keys, the skip-done hash every key but the
BOOKKEEPING ones, Hydra's sweep folder names leave the BOOKKEEPING keys out (a resolver in
conf/config.yaml asks `folder_name_exclusions`), and the report names variants by the keys
that shape results and are not one of the study's axes.
"""

from __future__ import annotations

import functools
from pathlib import Path

from omegaconf import OmegaConf

from medssl.config_schema import AXES, BOOKKEEPING, EVALUATION, PRETRAINING, ROLES

SHAPING = (PRETRAINING, EVALUATION)
# Config group choices that are not keys of the composed config: how a sweep is launched or
# searched, which study preset set its keys (its folder names the preset already), this
# machine's local overrides.
BOOKKEEPING_CHOICES = ("experiment", "hydra/launcher", "hydra/sweeper", "local")


def role_of(path: str) -> str | None:
    """The role of a dotted key: its own declaration, else its nearest declared parent's."""
    names = path.split(".")
    for end in range(len(names), 0, -1):
        role = ROLES.get(".".join(names[:end]))
        if role is not None:
            return role
    return None


def shapes_results(path: str) -> bool:
    """Whether a key changes what a run measures. An undeclared key (a config older or newer
    than this code) is taken to shape results, so it never merges two different runs."""
    return role_of(path) != BOOKKEEPING


def is_axis(path: str) -> bool:
    """A key the study varies within a recipe; a nested `seed` (`eval.finetune.seed: ${seed}`)
    follows the run's seed."""
    return path in AXES or path.rsplit(".", 1)[-1] == "seed"


def keep_roles(config: dict, roles: tuple[str, ...], prefix: str = "") -> dict:
    """`config` (plain nested data) with only the keys whose role is one of `roles`; a key
    without a declared role counts as PRETRAINING, the safe side for every use."""
    kept = {}
    for key, value in config.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            inner = keep_roles(value, roles, path + ".")
            if inner:
                kept[key] = inner
        elif (role_of(path) or PRETRAINING) in roles:
            kept[key] = value
    return kept


def folder_name_exclusions() -> list[str]:
    """Override keys Hydra leaves out of a sweep job's folder name: every BOOKKEEPING key the
    config files define (and its parents), and the bookkeeping group choices."""
    keys = {path for path, role in ROLES.items() if role == BOOKKEEPING}
    keys |= {path for path in _config_file_keys() if role_of(path) == BOOKKEEPING}
    return sorted(keys | set(BOOKKEEPING_CHOICES))


@functools.cache
def _config_file_keys() -> frozenset[str]:
    """Every dotted key (leaves and their parents) that conf/config.yaml or a group option
    writes under its group; options packaged elsewhere (`@package _global_`) are skipped."""
    from medssl.configs import config_dir

    conf = config_dir()
    primary = OmegaConf.to_container(OmegaConf.load(conf / "config.yaml"))
    primary.pop("hydra")  # Hydra leaves its own overrides out of folder names
    keys = set(_dotted(primary))
    for option in conf.rglob("*.yaml"):
        group = option.parent.relative_to(conf).as_posix()
        if group == "." or group.startswith("hydra") or _packaged_elsewhere(option):
            continue
        content = OmegaConf.to_container(OmegaConf.load(option)) or {}
        if isinstance(content, dict):
            keys |= set(_dotted(content, group.replace("/", ".") + "."))
    return frozenset(keys)


def _packaged_elsewhere(option: Path) -> bool:
    return "@package" in option.read_text().split("\n", 1)[0]


def _dotted(config: dict, prefix: str = ""):
    for key, value in config.items():
        if key == "defaults":
            continue
        yield f"{prefix}{key}"
        if isinstance(value, dict):
            yield from _dotted(value, f"{prefix}{key}.")
