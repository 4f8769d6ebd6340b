"""The YAML is the one home of a default: no `_target_` may have a Python signature default
that contradicts the value its config sets, or a class built from Python would be a different
method (or augmentation, or backbone) from the one `train.py` runs.

The real config is composed with every option of every config group (and every experiment); every
node with a `_target_`, nested ones included (`method.loss`, `augmentation.crop`), is checked
against its target's signature. Interpolations (`${...}`) and nested configs are not values to
compare; lists and tuples compare as sequences. Where presets legitimately differ (a crop's
scale), the parameter has no Python default at all.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import get_object
from omegaconf import OmegaConf

from tests.conftest import CONF

NOT_OPTIONS = ("hydra", "local")  # launchers and a user's own file instantiate nothing of ours
ON_THEIR_OWN = ("ablation", "experiment")  # they override other groups' choices


def group_options() -> dict[str, list[str]]:
    """Each config group (`eval/shift_dataset` included) and its options' overrides."""
    groups = {}
    for folder in sorted(p for p in CONF.rglob("*") if p.is_dir()):
        group = folder.relative_to(CONF).as_posix()
        if group.split("/")[0] in NOT_OPTIONS:
            continue
        names = sorted(o.stem for o in folder.glob("*.yaml"))
        if group == "eval":  # a list-valued group
            groups[group] = [f"eval=[{name}]" for name in names]
        elif group == "experiment":  # not in the defaults list
            groups[group] = [f"+experiment={name}" for name in names]
        else:
            groups[group] = [f"{group}={name}" for name in names]
    return groups


def option_overrides() -> list[list[str]]:
    """Override lists that between them choose every option of every group once: the i-th
    option of each independent group together (composing is what takes the time), then each
    ablation and experiment alone; and the default config."""
    groups = group_options()
    independent = [options for group, options in groups.items() if group not in ON_THEIR_OWN]
    rounds = max(len(options) for options in independent)
    overrides = [[options[i] for options in independent if i < len(options)] for i in range(rounds)]
    alone = [[o] for group in ON_THEIR_OWN for o in groups.get(group, [])]
    return [[], *overrides, *alone]


def target_nodes(node, path: str = "") -> Iterator[tuple[str, dict]]:
    if isinstance(node, dict):
        if "_target_" in node:
            yield path, node
        for key, value in node.items():
            yield from target_nodes(value, f"{path}.{key}" if path else key)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from target_nodes(value, f"{path}[{i}]")


def as_value(value):
    return [as_value(v) for v in value] if isinstance(value, (list, tuple)) else value


def is_comparable(value) -> bool:
    if isinstance(value, str):
        return "${" not in value
    if isinstance(value, list):
        return all(is_comparable(v) for v in value)
    return not isinstance(value, dict)


def contradictions(cfg: dict, where: str) -> Iterator[tuple[tuple[str, str], str]]:
    """((target, parameter), description) for each Python default the YAML contradicts."""
    for path, node in target_nodes(cfg):
        parameters = inspect.signature(get_object(node["_target_"])).parameters
        for name, parameter in parameters.items():
            if name not in node or parameter.default is inspect.Parameter.empty:
                continue
            value = node[name]
            if is_comparable(value) and as_value(value) != as_value(parameter.default):
                yield (
                    (node["_target_"], name),
                    f"{node['_target_']}({name}={parameter.default!r}) but {path}.{name}: "
                    f"{value!r} with {where}",
                )


@pytest.fixture(scope="module")
def composed() -> list[tuple[str, dict]]:
    """(overrides, resolved-free config without `hydra`) for every option; one Hydra init."""
    configs = []
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        for overrides in option_overrides():
            cfg = OmegaConf.to_container(compose("config", overrides=overrides), resolve=False)
            cfg.pop("hydra", None)
            configs.append((" ".join(overrides) or "the default config", cfg))
    return configs


@pytest.fixture(scope="module")
def found(composed) -> dict[tuple[str, str], list[str]]:
    result: dict[tuple[str, str], list[str]] = {}
    for where, cfg in composed:
        for key, message in contradictions(cfg, where):
            result.setdefault(key, []).append(message)
    return result


def test_no_python_default_contradicts_the_yaml(found):
    assert not found, "Python defaults that contradict the YAML (remove or match them):\n" + (
        "\n".join(messages[0] + f" (+{len(messages) - 1} more)" for messages in found.values())
    )


def test_the_walk_reaches_nested_targets_of_every_group(composed):
    seen = {node["_target_"] for _, cfg in composed for _, node in target_nodes(cfg)}
    for target in (
        "medssl.losses.nt_xent.NTXentLoss",  # method.loss
        "medssl.losses.dino.DINOLoss",
        "medssl.augment.geometric.RandomResizedCrop",  # augmentation.crop, multicrop's views
        "medssl.augment.multi_crop.MultiCrop",
        "medssl.evaluation.finetune.FineTune",  # eval=[finetune]
        "medssl.models.backbone.create_backbone",
        "medssl.tracking.WandbTracker",
    ):
        assert target in seen, target


def test_a_contradiction_is_reported_with_where_it_comes_from():
    cfg = {"method": {"loss": {"_target_": "medssl.losses.nt_xent.NTXentLoss", "gather": False}}}
    [(key, message)] = contradictions(cfg, "method=test")
    assert key == ("medssl.losses.nt_xent.NTXentLoss", "gather")
    assert "method.loss.gather: False with method=test" in message
    agreeing = {"_target_": "medssl.losses.nt_xent.NTXentLoss", "temperature": "${x}"}
    assert not list(contradictions({"loss": agreeing}, "interpolated"))
