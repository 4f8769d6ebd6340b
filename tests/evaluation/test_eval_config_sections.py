"""The `eval` config's two sections: protocols at eval.<name>, analyses at eval.analyses; the old
spellings of the analyses get one sentence naming the new one; every instantiate goes through
medssl.components."""

from __future__ import annotations

import ast

import pytest
from omegaconf import OmegaConf

from medssl import MedsslError
from medssl.evaluation.analyses import Analyses
from medssl.evaluation.build import build_evaluation, build_protocol, check_evaluation
from medssl.evaluation.config_sections import moved_key_hint
from medssl.evaluation.protocol import EvaluationProtocol
from medssl.evaluation.robustness import Robustness
from tests.conftest import REPO, compose_config


def built(overrides: list[str]):
    cfg = compose_config(overrides)
    return build_evaluation(cfg.eval, cfg.eval_outputs)


def test_protocols_and_analyses_come_from_their_own_sections():
    protocols, _, analyses = built(
        [
            "eval=[classifier,finetune,knn,linear]",
            "eval.analyses.robustness.enabled=true",
            "eval.analyses.robustness.severities=[2]",
            "eval.analyses.mc_dropout.samples=4",
        ]
    )
    assert list(protocols) == ["classifier", "finetune", "knn", "linear"]
    assert all(isinstance(p, EvaluationProtocol) for p in protocols.values())
    assert isinstance(analyses, Analyses) and isinstance(analyses.robustness, Robustness)
    assert analyses.robustness.enabled and analyses.robustness.severities == (2,)
    assert analyses.mc_dropout.samples == 4 and analyses.shift_dataset is None
    # Fine-tuning's dropout follows the analyses section's MC dropout.
    assert protocols["finetune"].mc_dropout.training_dropout == analyses.mc_dropout.rate


def test_the_check_before_pretraining_leaves_the_shift_dataset_unloaded():
    # image_folder has no root until one is given: loading it fails, the check does not load it.
    cfg = compose_config(["eval/analyses/shift_dataset=image_folder"])
    check_evaluation(cfg.eval, cfg.eval_outputs)
    with pytest.raises(MedsslError, match=r"eval\.analyses\.shift_dataset\.root"):
        build_evaluation(cfg.eval, cfg.eval_outputs)


def test_a_node_without_evaluate_is_no_protocol():
    with pytest.raises(MedsslError, match=r"^eval\.bogus is not an evaluation protocol"):
        build_protocol(OmegaConf.create({"_target_": "builtins.dict"}), "bogus")


@pytest.mark.parametrize(
    "old,new",
    [
        ("eval.robustness.enabled=true", "eval.analyses.robustness.enabled=true"),
        ("+eval.robustness.severities=[1,3]", "eval.analyses.robustness.severities=[1,3]"),
        ("eval.mc_dropout.samples=20", "eval.analyses.mc_dropout.samples=20"),
        ("eval/shift_dataset=pneumoniamnist", "eval/analyses/shift_dataset=pneumoniamnist"),
        ("eval.shift_dataset.size=64", "eval.analyses.shift_dataset.size=64"),
    ],
)
def test_an_old_spelling_gets_one_sentence_naming_the_new_one(old, new):
    hint = moved_key_hint(["eval=[linear,finetune]", old])
    assert hint.startswith(f"{old}: ") and hint.endswith(f"use {new}")
    assert "\n" not in hint
    with pytest.raises(Exception, match="override|Could not"):  # Hydra refuses the old one...
        compose_config([old.lstrip("+")])
    composed = ["eval/analyses/shift_dataset=pneumoniamnist"] if "size" in new else []
    compose_config([*composed, new])  # ...and takes the new one


@pytest.mark.parametrize(
    "current",
    [
        "eval=[linear,knn]",
        "eval.finetune.epochs=3",
        "eval.analyses.robustness.enabled=true",
        "eval/analyses/shift_dataset=pneumoniamnist",
        "eval_outputs.cam=true",
        "eval.robustness_extra=1",
    ],
)
def test_current_spellings_get_no_hint(current):
    assert moved_key_hint([current]) is None


def test_a_force_added_old_key_is_refused_naming_the_new_section():
    with pytest.raises(MedsslError, match=r"eval\.robustness is now eval\.analyses\.robustness"):
        built(["+eval.robustness.enabled=true"])


def test_only_medssl_components_calls_hydras_instantiate():
    """One checked helper turns every build error into one sentence (medssl.components)."""
    calling = []
    for path in sorted((REPO / "src" / "medssl").rglob("*.py")):
        if path.name == "components.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            named = isinstance(node, ast.Name | ast.Attribute) and "instantiate" in (
                getattr(node, "id", None),
                getattr(node, "attr", None),
            )
            imported = isinstance(node, ast.ImportFrom) and any(
                alias.name == "instantiate" for alias in node.names
            )
            if named or imported:
                calling.append(str(path.relative_to(REPO)))
    assert not calling, sorted(set(calling))
