"""The top-level schema (medssl.config_schema): a misspelt key or a value of the wrong type fails
at composition with Hydra's message; the YAML, not the schema, holds every value."""

from __future__ import annotations

import dataclasses
import re

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import MISSING, OmegaConf

import medssl.cli.evaluate  # noqa: F401  registers the `evaluate` primary config
from medssl.config_schema import SCHEMAS, check_config
from medssl.configs import compose_config
from medssl.errors import MedsslError
from tests.conftest import CONF


def cause_chain(error: BaseException) -> str:
    messages = []
    while error is not None:
        messages.append(str(error))
        error = error.__cause__
    return "\n".join(messages)


def test_a_misspelt_trainer_key_fails_at_composition():
    with pytest.raises(ConfigCompositionException, match="Could not override 'trainer.epoch'"):
        compose_config(["trainer.epoch=3"])
    with pytest.raises(ConfigCompositionException, match="Could not override 'label_fracc'"):
        compose_config(["label_fracc=0.1"])


def test_a_key_added_with_plus_is_refused_in_a_checked_node():
    """Hydra's `+` force-adds past any schema; check_config (every CLI runs it) refuses it."""
    with pytest.raises(MedsslError, match=r"trainer.epoch: Key 'epoch' not in 'TrainerConfig'"):
        compose_config(["+trainer.epoch=3"])
    with pytest.raises(MedsslError, match=r"cache.dirr: Key 'dirr' not in 'CacheConfig'"):
        compose_config(["+cache.dirr=x"])
    with pytest.raises(MedsslError, match=r"label_fracc: Key 'label_fracc' not in 'TrainConfig'"):
        compose_config(["+label_fracc=0.1"])
    # Groups built by `_target_` stay open: their keys are their targets' arguments.
    assert compose_config(["backbone=vit_tiny", "+backbone.depth=3"]).backbone.depth == 3


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("trainer.epochs=abc", "Value 'abc' of type 'str' could not be converted to Integer"),
        ("seed=1.5", "Value '1.5' of type 'float' could not be converted to Integer"),
        ("skip_done=maybe", "Value 'maybe' is not a valid bool"),
        (
            "trainer.keep_epochs=[ten]",
            "Value 'ten' of type 'str' could not be converted to Integer",
        ),
    ],
)
def test_a_value_of_the_wrong_type_fails_at_composition(override, expected):
    with pytest.raises(
        ConfigCompositionException, match=re.escape(f"Error merging override {override}")
    ) as e:
        compose_config([override])
    assert expected in cause_chain(e.value)


def test_values_keep_their_types():
    cfg = compose_config(["label_frac=1", "trainer.eval_every=5", "trainer.keep_epochs=[10,50]"])
    assert cfg.label_frac == 1.0 and isinstance(cfg.label_frac, float)
    assert cfg.trainer.eval_every == 5 and list(cfg.trainer.keep_epochs) == [10, 50]
    assert compose_config(["seed=3"]).label_seed == 3  # an interpolation in a typed field
    assert compose_config(["trainer.eval_every=null"]).trainer.eval_every is None


def test_a_misspelt_key_in_a_preset_fails_at_composition(tmp_path):
    """A typo inside a YAML file, which no override names, is caught too."""
    (tmp_path / "experiment").mkdir()
    (tmp_path / "experiment" / "typo.yaml").write_text(
        "# @package _global_\ntrainer:\n  epoch: 5\n"
    )
    with pytest.raises(ConfigCompositionException, match="typo") as e:
        compose_config([f"hydra.searchpath=[file://{tmp_path}]", "+experiment=typo"])
    assert "Key 'epoch' not in 'TrainerConfig'" in cause_chain(e.value)


def unset(node, path: str = "") -> set[str]:
    """Keys left `???`; interpolations are not resolved (inspect's `out` needs a Hydra run)."""
    if isinstance(node, dict):
        return set().union(*(unset(v, f"{path}{k}.") for k, v in node.items()))
    return {path[:-1]} if node == "???" else set()


def test_the_yaml_sets_every_key_the_schema_declares():
    """The schema holds no value of its own, so each must come from the YAML."""
    for name in ("config", "inspect"):
        assert unset(OmegaConf.to_container(compose_config(name=name))) == set(), name
    assert unset(OmegaConf.to_container(compose_config(name="evaluate"))) == {"ckpt"}


def test_the_schema_holds_no_defaults():
    def walk(schema):
        for f in dataclasses.fields(schema):
            if dataclasses.is_dataclass(f.type):
                yield from walk(f.type)
            else:
                yield schema, f

    for schema in SCHEMAS.values():
        for owner, f in walk(schema):
            assert f.default is MISSING, f"{owner.__name__}.{f.name} = {f.default!r}"


@pytest.mark.parametrize("experiment", sorted(p.stem for p in (CONF / "experiment").glob("*.yaml")))
def test_every_experiment_fits_the_schema(experiment):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=[f"+experiment={experiment}"])
    check_config(cfg)
    assert unset(OmegaConf.to_container(cfg)) == set()
