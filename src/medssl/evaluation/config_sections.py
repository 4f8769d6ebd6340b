"""The two sections of the `eval` config: the protocols and the analyses.

The protocols are the `eval` group's options, each at `eval.<name>` (eval=[linear,finetune,knn],
eval.finetune.epochs=5); the analyses of what they fitted have their own section,
`eval.analyses` (a `_target_` of its own, medssl.evaluation.analyses.Analyses). Before that
section the analyses sat beside the protocols (`eval.robustness`, `eval.mc_dropout`, the group
`eval/shift_dataset`); those spellings are refused with one sentence naming the new one.
"""

from __future__ import annotations

import re

from medssl.errors import MedsslError

ANALYSES = "analyses"  # eval.analyses; every other key of `eval` is a protocol
MOVED = ("robustness", "mc_dropout", "shift_dataset")  # once eval.<name>, now eval.analyses.<name>

# An override (`+`, `++` or `~` in front) of a moved key (`eval.mc_dropout.samples=20`) or of
# the moved group (`eval/shift_dataset=pneumoniamnist`).
OLD_SPELLING = re.compile(rf"^(?P<sign>[+~]{{0,2}})eval(?P<sep>[./])(?P<name>{'|'.join(MOVED)})\b")


def protocol_nodes(eval_cfg) -> dict:
    """The protocols' config nodes by name: every key of `eval` but its analyses section."""
    for name in eval_cfg:
        if name in MOVED:  # force-added, e.g. `+eval.robustness.enabled=true`
            raise MedsslError(
                f"eval.{name} is now eval.{ANALYSES}.{name}: set e.g. "
                f"eval.{ANALYSES}.{name}.<key>=<value> instead."
            )
    return {name: node for name, node in eval_cfg.items() if name != ANALYSES}


def moved_key_hint(args: list[str]) -> str | None:
    """One sentence for the first command-line override in `args` that spells a moved analysis
    the old way (Hydra's own refusal would suggest force-adding it), else None."""
    for arg in args:
        found = OLD_SPELLING.match(arg)
        if found:
            sep, name = found.group("sep"), found.group("name")
            new = arg.replace(f"eval{sep}{name}", f"eval{sep}{ANALYSES}{sep}{name}", 1)
            return (
                f"{arg}: the analyses have their own section now, eval{sep}{ANALYSES}; "
                f"use {new.lstrip('+')}"
            )
    return None
