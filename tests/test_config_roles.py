"""One declaration of what each config key does to a result (config_schema.ROLES), and the four
mechanisms that derive from it: the encoder cache key, the skip-done hash, the sweep folder
names and the report's variant names."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from medssl.config_roles import folder_name_exclusions, is_axis, role_of
from medssl.config_schema import BOOKKEEPING, EVALUATION, PRETRAINING, ROLES, TrainConfig
from medssl.data.label_subset import labelled_subset
from medssl.pretraining_setup import assemble_pretraining
from medssl.seeding import seed_everything
from medssl.study.encoder_cache import DATA_GROUPS, key_material, pretraining_key
from medssl.study.report.collect import Run
from medssl.study.report.variants import label_variants, names_a_variant
from medssl.study.run_record import config_hash
from tests.conftest import CONF, compose_config

GROUPS_WITH_OPTIONS = sorted(
    p.relative_to(CONF).as_posix()
    for p in CONF.rglob("*")
    if p.is_dir() and any(p.glob("*.yaml")) and "hydra" not in p.parts
)
TINY = ["backbone=smallcnn", "trainer.epochs=1", "trainer.batch_size=128"]


def _leaves(config: dict, prefix: str = ""):
    for key, value in config.items():
        if isinstance(value, dict) and value:
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _option(group: str, name: str) -> str:
    if group in ("experiment", "search"):  # not in the default config's defaults list
        return f"+{group}={name}"
    if group == "eval":
        return f"eval=[{name}]"
    return f"{group}={name}"


def _every_composed_config():
    """The default config, each option of every group, and each experiment and ablation preset.

    Plain groups are composed side by side (the k-th option of each in one config), which covers
    every option in a few composes; presets change other groups, so each is composed alone.
    """
    alone = {"experiment", "ablation", "search"}
    options = {g: sorted(p.stem for p in (CONF / g).glob("*.yaml")) for g in GROUPS_WITH_OPTIONS}
    overrides = [[]]
    overrides += [[_option(g, name)] for g in sorted(alone & options.keys()) for name in options[g]]
    side_by_side = {g: names for g, names in options.items() if g not in alone}
    for k in range(max(len(names) for names in side_by_side.values())):
        overrides.append(
            [_option(g, names[k]) for g, names in side_by_side.items() if k < len(names)]
        )
    with initialize_config_dir(str(CONF), version_base="1.3"):
        for chosen in overrides:
            yield chosen, OmegaConf.to_container(compose("config", overrides=chosen))


@pytest.fixture(scope="module")
def composed_leaves() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for chosen, config in _every_composed_config():
        for path, _ in _leaves(config):
            found.setdefault(path, chosen)
    return found


def test_every_key_of_every_composed_option_has_a_role(composed_leaves):
    missing = {path: chosen for path, chosen in composed_leaves.items() if role_of(path) is None}
    assert not missing, (
        f"keys without a role in medssl.config_schema.ROLES (and the option that writes them): "
        f"{missing}"
    )


def test_every_schema_field_has_a_role():
    def fields(schema, prefix=""):
        for field in dataclasses.fields(schema):
            factory = field.default_factory
            if factory is not dataclasses.MISSING and dataclasses.is_dataclass(factory):
                yield from fields(factory, f"{prefix}{field.name}.")
            else:
                yield f"{prefix}{field.name}"

    assert [path for path in fields(TrainConfig) if role_of(path) is None] == []


def test_every_declared_role_names_a_key_that_exists(composed_leaves):
    """No stale declaration: each path is a composed key, a parent of one, or a group choice."""
    parents = {p.rsplit(".", depth)[0] for p in composed_leaves for depth in range(1, 6)}
    choices = {"hydra", "ablation", "init"}  # not keys: Hydra's own section; choices editing others
    stale = [p for p in ROLES if p not in composed_leaves and p not in parents | choices]
    assert stale == []


def test_roles_are_the_three_declared_ones_and_axes_are_their_own_thing():
    assert set(ROLES.values()) == {PRETRAINING, EVALUATION, BOOKKEEPING}
    assert is_axis("label_frac") and is_axis("eval.finetune.seed") and not is_axis("trainer.epochs")


# ---- derived behaviour, key by key ---------------------------------------------------------


@pytest.fixture(scope="module")
def base(medmnist_root):
    cfg = compose_config([*TINY, f"dataset.root={medmnist_root}"])
    data = instantiate(cfg.dataset)
    seed_everything(cfg.seed)
    labelled = labelled_subset(data.train.labels, cfg.label_frac, cfg.label_seed)
    job, _ = assemble_pretraining(cfg, data, labelled, torch.device("cpu"), "fp32")
    return cfg, job


def _changed(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    if isinstance(value, str) and not value.startswith("${"):
        return value + "_x"
    if value is None:
        return "set"
    return None  # lists and interpolations: covered by the named cases below


def _with(cfg, path: str, value):
    container = OmegaConf.to_container(cfg, resolve=True)
    node = container
    *parents, leaf = path.split(".")
    for name in parents:
        node = node[name]
    node[leaf] = value
    return OmegaConf.create(container)


def test_each_key_changes_exactly_what_its_role_says(base):
    """Every leaf of the default config, changed alone: a PRETRAINING key changes the cache
    key and the skip-done hash; an EVALUATION key keeps the encoder but re-runs the job; a
    BOOKKEEPING key changes neither and names no variant."""
    cfg, job = base
    key, job_hash = pretraining_key(key_material(cfg, job, 1)), config_hash(cfg)
    checked = {PRETRAINING: 0, EVALUATION: 0, BOOKKEEPING: 0}
    for path, value in _leaves(OmegaConf.to_container(cfg, resolve=True)):
        new = _changed(value)
        if new is None or path.split(".")[0] in DATA_GROUPS or "_target_" in path:
            continue  # data keys enter the cache key by content: test_data_keys_...
        if path == "trainer.precision":
            continue  # keyed as it resolved (the job's precision), not as written
        changed = _with(cfg, path, new)
        role = role_of(path)
        new_key = pretraining_key(key_material(changed, job, 1))
        assert (new_key != key) == (role == PRETRAINING), (path, role)
        assert (config_hash(changed) != job_hash) == (role != BOOKKEEPING), (path, role)
        assert names_a_variant(path) == (role != BOOKKEEPING and not is_axis(path)), path
        checked[role] += 1
    assert min(checked.values()) >= 4, checked


def test_named_keys_of_each_role(base):
    cfg, job = base
    key, job_hash = pretraining_key(key_material(cfg, job, 1)), config_hash(cfg)
    cases = {
        PRETRAINING: ["method.loss.temperature", "optimizer.base_lr", "trainer.epochs", "seed"],
        EVALUATION: ["label_frac", "eval_outputs.n_bins", "trainer.eval_every", "label_seed"],
        BOOKKEEPING: ["trainer.keep_epochs", "augmentation.cpu_threads", "trainer.speed.compile"],
    }
    values = {"trainer.keep_epochs": [1], "trainer.eval_every": 1, "label_frac": 0.5}
    for role, paths in cases.items():
        for path in paths:
            old = OmegaConf.select(cfg, path)
            changed = _with(cfg, path, values.get(path, _changed(old)))
            assert (pretraining_key(key_material(changed, job, 1)) != key) == (role == PRETRAINING)
            assert (config_hash(changed) != job_hash) == (role != BOOKKEEPING), path


def test_data_keys_enter_the_cache_key_by_content(medmnist_root, base):
    cfg, job = base
    moved = _with(cfg, "dataset.root", "/elsewhere")  # the same images from another folder
    assert pretraining_key(key_material(moved, job, 1)) == pretraining_key(
        key_material(cfg, job, 1)
    )
    assert config_hash(moved) == config_hash(cfg)


def test_folder_names_leave_out_exactly_the_bookkeeping_overrides(tmp_path):
    overrides = {
        "trainer.keep_epochs=[1]": False,
        "trainer.speed.compile=true": False,
        "augmentation.cpu_threads=1": False,
        "trainer.feed=streamed": False,
        "logger=wandb": False,
        "logger.mode=online": False,
        "cache.dir=/x": False,
        "eval_outputs.cam=true": False,
        "label_frac=0.05": True,
        "method=vicreg": True,
        "trainer.epochs=2": True,
        "eval_outputs.n_bins=10": True,
    }
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=list(overrides), return_hydra_config=True)
    named = cfg.hydra.job.override_dirname.split(",")
    assert named == sorted(o for o, kept in overrides.items() if kept)
    for path in folder_name_exclusions():
        assert role_of(path.replace("/", ".")) in (BOOKKEEPING, None), path


def test_a_bookkeeping_difference_names_no_variant_and_an_evaluation_one_does():
    def run(**trainer):
        config = copy.deepcopy({"method": {"loss": {"temperature": 0.1}}, "trainer": trainer})
        choices = {"config/method": "simclr", "config/dataset": "breastmnist"}
        return Run(".", "finished", {**choices, "seed": 0}, config)

    same = label_variants([run(keep_epochs=[], feed="auto"), run(keep_epochs=[5], feed="streamed")])
    assert same[0] == same[1]
    apart = label_variants([run(collapse_min_std=0.01), run(collapse_min_std=0.02)])
    assert apart[0] != apart[1]


def test_the_folder_exclusions_cover_every_bookkeeping_key_a_config_file_writes(composed_leaves):
    excluded = set(folder_name_exclusions())
    for path in composed_leaves:
        if role_of(path) == BOOKKEEPING and not path.startswith("hydra."):
            assert path in excluded or any(path.startswith(e + ".") for e in excluded), path


def test_an_unknown_key_is_taken_to_shape_results():
    assert role_of("brand_new_key") is None
    assert names_a_variant("brand_new_key")


def test_conf_folder_is_the_packaged_one():
    assert Path(CONF).resolve() == (Path(__file__).parents[1] / "conf").resolve()
