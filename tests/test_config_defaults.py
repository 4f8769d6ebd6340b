"""The YAML is the one home of a default. A parameter of anything built from config (every
`_target_` of every option of every group, nested ones included: `method.loss`,
`augmentation.crop`) has no Python signature default when the YAML sets it: a value written
twice drifts, and a class built from Python becomes a different method (or augmentation, or
backbone) from the one `train.py` runs. A default the YAML never sets is kept only with a reason
in `KEPT_DEFAULTS`; otherwise it belongs in the YAML too.

The real config is composed with every option of every config group (and every experiment and
ablation alone); a parameter counts as set wherever any of them sets it, interpolations
(`seed: ${seed}`) included.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import get_object
from omegaconf import OmegaConf

from tests.conftest import CONF

NOT_OPTIONS = ("hydra", "local")  # launchers and a user's own file instantiate nothing of ours
ON_THEIR_OWN = ("ablation", "experiment", "search")  # they override other groups' choices

# (target, parameter) -> why it keeps a Python default that no YAML sets.
KEPT_DEFAULTS = {
    ("medssl.data.image_folder.load_image_folder", "listing"): (
        "a Python hook, not an option: load_csv_labels passes its own listing of a CSV; a folder "
        "of class subfolders is what the `image_folder` option means"
    ),
}


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
        elif group in ("experiment", "search"):  # not in the defaults list
            groups[group] = [f"+{group}={name}" for name in names]
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


def python_defaults(target: str) -> dict[str, object]:
    """The parameters of `target` that have a signature default, with it."""
    parameters = inspect.signature(get_object(target)).parameters
    return {
        name: p.default
        for name, p in parameters.items()
        if p.default is not inspect.Parameter.empty
    }


def repetitions(cfg: dict, where: str) -> Iterator[tuple[tuple[str, str], str]]:
    """((target, parameter), description) for each Python default the YAML sets again."""
    for path, node in target_nodes(cfg):
        for name, default in python_defaults(node["_target_"]).items():
            if name in node:
                yield (
                    (node["_target_"], name),
                    f"{node['_target_']}({name}={default!r}) and {path}.{name}: "
                    f"{node[name]!r} with {where}",
                )


@dataclass
class Walk:
    """What every composed option reaches: each target's repeated defaults (with where they
    are set) and the parameters any option sets."""

    repeated: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    set_by_yaml: dict[str, set[str]] = field(default_factory=dict)

    def add(self, cfg: dict, where: str) -> None:
        for key, message in repetitions(cfg, where):
            self.repeated.setdefault(key, []).append(message)
        for _, node in target_nodes(cfg):
            self.set_by_yaml.setdefault(node["_target_"], set()).update(node)

    def unset_defaults(self) -> dict[tuple[str, str], object]:
        """(target, parameter) -> default, for each default no option sets."""
        return {
            (target, name): default
            for target, names in self.set_by_yaml.items()
            for name, default in python_defaults(target).items()
            if name not in names
        }


@pytest.fixture(scope="module")
def walk() -> Walk:
    """Every option composed (without `hydra`, unresolved) and walked; one Hydra init."""
    result = Walk()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        for overrides in option_overrides():
            cfg = OmegaConf.to_container(compose("config", overrides=overrides), resolve=False)
            cfg.pop("hydra", None)
            result.add(cfg, " ".join(overrides) or "the default config")
    return result


def test_no_python_default_repeats_the_yaml(walk):
    repeated = walk.repeated
    assert not repeated, (
        "Python defaults of parameters the YAML sets (remove them from the signature):\n"
        + "\n".join(m[0] + f" (+{len(m) - 1} more)" for m in repeated.values())
    )


def test_a_default_no_yaml_sets_is_kept_only_for_a_stated_reason(walk):
    unexplained = {key: d for key, d in walk.unset_defaults().items() if key not in KEPT_DEFAULTS}
    assert not unexplained, (
        "Python defaults no option sets (move them into the YAML, or say in KEPT_DEFAULTS why "
        "they stay):\n"
        + "\n".join(f"{target}({name}={d!r})" for (target, name), d in unexplained.items())
    )


def test_every_kept_default_is_still_a_default_no_yaml_sets(walk):
    unset = walk.unset_defaults()
    stale = [key for key in KEPT_DEFAULTS if key not in unset]
    assert not stale, f"KEPT_DEFAULTS entries that no longer apply (drop them): {stale}"
    assert all(reason.strip() for reason in KEPT_DEFAULTS.values())


def test_the_walk_reaches_nested_targets_of_every_group(walk):
    for target in (
        "medssl.losses.nt_xent.NTXentLoss",  # method.loss
        "medssl.losses.dino.DINOLoss",
        "medssl.augment.geometric.RandomResizedCrop",  # augmentation.crop, multicrop's views
        "medssl.augment.multi_crop.MultiCrop",
        "medssl.evaluation.finetune.FineTune",  # eval=[finetune]
        "medssl.evaluation.linear_probe.LinearProbe",  # eval.finetune.probe
        "medssl.models.backbone.create_backbone",
        "medssl.data.intensity.IntensityMapping",  # dataset.intensity
        "medssl.tracking.WandbTracker",  # logger=wandb
    ):
        assert target in walk.set_by_yaml, target


def with_defaults(gather: bool = True, temperature: float = 0.1, *, size: int = 3) -> None:
    """A target for the checks below: three parameters with defaults."""


TOY = f"{__name__}.with_defaults"


def test_a_repetition_is_found_whatever_its_value_and_reported_with_where_it_comes_from():
    cfg = {"method": {"loss": {"_target_": TOY, "gather": True, "temperature": "${x}"}}}
    found = dict(repetitions(cfg, "method=test"))
    assert set(found) == {(TOY, "gather"), (TOY, "temperature")}  # agreeing or interpolated
    assert found[(TOY, "gather")] == (
        f"{TOY}(gather=True) and method.loss.gather: True with method=test"
    )
    assert not list(repetitions({"loss": {"_target_": TOY}}, "unset"))


def test_a_default_is_unset_only_where_no_option_sets_it():
    walk = Walk()
    walk.add({"a": {"_target_": TOY, "gather": False}}, "one option")
    walk.add({"b": [{"_target_": TOY, "size": 4}]}, "another option")
    assert walk.unset_defaults() == {(TOY, "temperature"): 0.1}
    assert set(walk.repeated) == {(TOY, "gather"), (TOY, "size")}
