"""Building a run's components from their config blocks with `hydra.utils.instantiate`.

Every instantiate of a component goes through `build_node` (or `build` and `call`, which use
it), so any error a component or a library raises while it is built reaches the user as one
sentence naming the config key and its value, e.g. `method.loss could not be built from
method.loss.temperature=0 (NTXentLoss): temperature must be positive, got 0.` The traceback is logged at debug level
for whoever debugs the component itself.
"""

from __future__ import annotations

import logging
import re

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from medssl.errors import MedsslError

log = logging.getLogger(__name__)


def build(cfg: DictConfig, key: str, **kwargs):
    """`cfg.<key>` (a dotted key) instantiated with `kwargs`."""
    return build_node(OmegaConf.select(cfg, key), key, **kwargs)


def build_node(node, key: str, **kwargs):
    """`node` instantiated with `kwargs`; `key` is the config key it comes from, for messages."""
    target = node.get("_target_") if hasattr(node, "get") else None
    log.info("Instantiating %s <%s>", key, target)
    try:
        return instantiate(node, **kwargs)
    except Exception as error:
        raise refusal(key, node, error) from None


def call(cfg: DictConfig, key: str, *args, **kwargs):
    """The `_partial_` component at `cfg.<key>` (an optimizer, a schedule) built and called
    with `args`: its values are checked where the component checks them."""
    factory = build(cfg, key)
    try:
        return factory(*args, **kwargs)
    except Exception as error:
        raise refusal(key, OmegaConf.select(cfg, key), error) from None


def refusal(key: str, node, error: Exception) -> MedsslError:
    """One sentence for an error raised while `node` (at config key `key`) was built: the
    component's own MedsslError as it is, anything else with the key and the value it names."""
    cause = error.__cause__ if isinstance(error, InstantiationException) else error
    if isinstance(cause, MedsslError):
        return cause
    log.debug("Building %s failed", key, exc_info=error)
    # Hydra names the nested block that failed (`full_key: method.loss`).
    found = re.search(r"full_key: (\S+)", str(error))
    full_key = found.group(1) if found else key
    block = _block(node, key, full_key)
    reason = _first_line(cause if cause is not None else error)
    target = block.get("_target_") if isinstance(block, DictConfig) else None
    by = f" ({str(target).rsplit('.', 1)[-1]})" if target else ""
    values = _named_values(block, full_key, reason) or _values(block, full_key)
    given = f" from {values}" if values else ""
    return MedsslError(f"{full_key} could not be built{given}{by}: {reason}.")


def _block(node, key: str, full_key: str):
    """The config block at `full_key` inside `node` (which sits at `key`)."""
    if full_key == key or not isinstance(node, DictConfig):
        return node
    inner = full_key.removeprefix(f"{key}.")
    try:
        found = OmegaConf.select(node, inner, throw_on_missing=False)
    except Exception:
        return node
    return found if isinstance(found, DictConfig) else node


def _scalars(block) -> dict:
    if not isinstance(block, DictConfig):
        return {}
    out = {}
    for name in block:
        if str(name).startswith("_"):
            continue
        try:
            value = block[name]
        except Exception:  # an interpolation that does not resolve is no value to name
            continue
        if not isinstance(value, DictConfig):
            out[str(name)] = OmegaConf.to_container(value) if OmegaConf.is_config(value) else value
    return out


def _named_values(block, full_key: str, reason: str) -> str:
    """`full_key.name=value` for each of the block's values whose name the reason mentions."""
    named = [
        f"{full_key}.{name}={value}"
        for name, value in _scalars(block).items()
        if re.search(rf"\b{re.escape(name)}\b", reason)
        or re.search(rf"\b{re.escape(name.replace('_', ' '))}\b", reason)
    ]
    return ", ".join(named)


def _values(block, full_key: str) -> str:
    return ", ".join(f"{full_key}.{name}={value}" for name, value in _scalars(block).items())


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return (lines[0].rstrip(".") if lines else "") or type(error).__name__
