"""Building the evaluation from config: the protocols, the output options and the analyses.

`build_evaluation(cfg.eval, cfg.eval_outputs)` turns the `eval` config's two sections into the
protocols (every key but `eval.analyses`, each an `EvaluationProtocol`) and the `Analyses`
(robustness, shift dataset, MC dropout), and `eval_outputs` into the options every protocol
shares. `check_evaluation` builds them once before pretraining, so a refused value is one
sentence before hours of pretraining rather than after them.
"""

from __future__ import annotations

import logging

from medssl.components import build_node
from medssl.errors import MedsslError
from medssl.evaluation.analyses import Analyses
from medssl.evaluation.config_sections import ANALYSES, protocol_nodes
from medssl.evaluation.output_options import EvalOutputOptions
from medssl.evaluation.protocol import EvaluationProtocol


def build_evaluation(
    eval_cfg, outputs_cfg
) -> tuple[dict[str, EvaluationProtocol], EvalOutputOptions, Analyses]:
    """The protocols by name, the output options (`eval_outputs`) and the analyses
    (`eval.analyses`, its shift dataset loaded)."""
    return _build(eval_cfg, outputs_cfg, load=True)


def check_evaluation(eval_cfg, outputs_cfg) -> None:
    """Build the protocols and options once before pretraining, so a value they refuse is one
    sentence before hours of pretraining, not after them; the shift dataset is not loaded."""
    quiet = logging.getLogger("medssl.components")
    level = quiet.level
    quiet.setLevel(logging.WARNING)  # evaluation logs what it builds when it builds it
    try:
        _build(eval_cfg, outputs_cfg, load=False)
    finally:
        quiet.setLevel(level)


def _build(eval_cfg, outputs_cfg, load: bool):
    options = build_node(outputs_cfg, "eval_outputs")
    nodes = protocol_nodes(eval_cfg)
    if not nodes:
        raise MedsslError("no evaluation protocol selected; use e.g. eval=[linear,finetune,knn].")
    protocols = {name: build_protocol(node, name) for name, node in nodes.items()}
    if eval_cfg.get(ANALYSES) is None:
        raise MedsslError(f"eval.{ANALYSES} is missing; conf/config.yaml sets it.")
    unloaded = {} if load else {"shift_dataset": None}
    analyses = build_node(eval_cfg[ANALYSES], f"eval.{ANALYSES}", **unloaded)
    return protocols, options, analyses


def build_protocol(node, name: str) -> EvaluationProtocol:
    """The protocol `eval.<name>` configures, refused in one sentence if it is none."""
    protocol = build_node(node, f"eval.{name}")
    if not isinstance(protocol, EvaluationProtocol):
        raise MedsslError(f"eval.{name} is not an evaluation protocol (it has no evaluate method).")
    return protocol
