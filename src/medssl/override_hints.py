"""A sentence for an override Hydra would refuse with a hint that does not fit medssl.

`eval.finetune.epochs=-1` under the default `eval=[linear]` sets a protocol that is not
selected; Hydra answers "To append to your config use +eval.finetune.epochs=-1", which would add
half a protocol block. What the user needs is `eval=[linear,finetune]`. An analysis spelled as
before it moved to `eval.analyses` (`eval.robustness.enabled=true`, `eval/shift_dataset=X`)
gets the same unfitting advice; what the user needs is the new key. Hydra composes before any
medssl code runs, so the CLIs ask here first; only a command line that sets a key under
`eval.<protocol>` pays for composing the eval list once more.
"""

from __future__ import annotations

import re

from hydra import compose, initialize_config_dir

from medssl.configs import config_dir
from medssl.evaluation.config_sections import moved_key_hint, protocol_nodes

# Overrides that decide which protocols are selected (an experiment may select some).
SELECTING = re.compile(r"^\+{0,2}(eval|experiment)=")
SETS_PROTOCOL_KEY = re.compile(r"^(eval\.(\w+)\.[^=]*)=")


def override_hint(args: list[str], config_name: str) -> str | None:
    """The sentence for an old spelling of a moved analysis in `args` (its new key), else for
    the first override that sets a key of a protocol the command line does not select, else
    None (Hydra then reports anything else)."""
    moved = moved_key_hint(args)
    if moved:
        return moved
    setting = [
        (arg, found.group(2))
        for arg in args
        if (found := SETS_PROTOCOL_KEY.match(arg))
        and (config_dir() / "eval" / f"{found.group(2)}.yaml").is_file()
    ]
    if not setting:
        return None
    selecting = [arg for arg in args if SELECTING.match(arg)]
    try:
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            cfg = compose(config_name=config_name, overrides=selecting)
    except Exception:  # a sweep or a bad option: Hydra's own message says it better
        return None
    selected = list(protocol_nodes(cfg.eval))
    for arg, protocol in setting:
        if protocol not in selected:
            wanted = ",".join([*selected, protocol])
            return (
                f"{arg} sets the {protocol} protocol, which is not selected "
                f"(eval=[{','.join(selected)}]); select it too: 'eval=[{wanted}]' {arg}"
            )
    return None
