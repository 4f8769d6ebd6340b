"""Which configuration a run folder's record belongs to, and whether another may write there.

A job's results.json carries `run/config_hash`, the hash of the keys that shape what it
measures (every key but the bookkeeping ones, medssl.config_schema.ROLES); its config.yaml is
the resolved config that wrote it. From these: whether a folder already holds what a config
would write (`completed_results`, so the job is skipped), the sentence refusing a config where
another's finished results lie (`refusal`, naming the keys that differ), and the identity a
job's record places it by in the study's tables (`identity`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from medssl.atomic_files import write_bytes
from medssl.config_roles import SHAPING, keep_roles

log = logging.getLogger("medssl")

# Before roles were declared, the hash left out only these keys; a study finished then is
# still recognised as finished (`_written_before_roles`).
BEFORE_ROLES_LEFT_OUT = ("cache", "skip_done", "logger")


def shaping_config(cfg: DictConfig) -> dict:
    """The keys that change what a job measures: every key but the bookkeeping ones."""
    return keep_roles(OmegaConf.to_container(cfg, resolve=True), SHAPING)


def config_hash(cfg: DictConfig) -> str:
    return _hash(shaping_config(cfg))


def _hash(config: dict) -> str:
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def finished_by(results: dict | None, cfg: DictConfig, run_dir: Path) -> bool:
    """Whether `results` (a results.json) are what `cfg` would write in `run_dir`."""
    if results is None:
        return False
    return results.get("run/config_hash") == config_hash(cfg) or _written_before_roles(
        results, cfg, run_dir
    )


def _written_before_roles(results: dict, cfg: DictConfig, run_dir: Path) -> bool:
    """Results hashed by the older rule: its own config.yaml says what wrote them."""
    stored = stored_config(Path(run_dir) / "config.yaml")
    if stored is None or config_hash(stored) != config_hash(cfg):
        return False
    container = OmegaConf.to_container(stored, resolve=True)
    old = {k: v for k, v in container.items() if k not in BEFORE_ROLES_LEFT_OUT}
    return results.get("run/config_hash") == _hash(old)


def identity(cfg: DictConfig, choices: dict[str, str] | None) -> dict:
    """What places a job in the study's tables: its config choices, fraction and seeds."""
    return {
        **{f"config/{group}": str(option) for group, option in (choices or {}).items()},
        "label_frac": cfg.label_frac,
        "seed": cfg.seed,
        "label_seed": cfg.label_seed,
        "run/config_hash": _config_hash_or_none(cfg),
    }


def _config_hash_or_none(cfg: DictConfig) -> str | None:
    try:  # a failure report must not fail on the config that caused it
        return config_hash(cfg)
    except Exception:
        return None


def read_results(run_dir: Path, quiet: bool = False) -> dict | None:
    """`run_dir/results.json` as a dict; None when there is none or it cannot be read (a torn
    write, random bytes, not a JSON object), which is logged: the job runs again."""
    path = Path(run_dir) / "results.json"
    if not path.exists():
        return None
    try:
        results = json.loads(path.read_bytes())
    except (OSError, ValueError) as error:  # ValueError: bad JSON and bad UTF-8 alike
        why = f"{type(error).__name__}: {str(error).splitlines()[0][:80]}"
    else:
        if isinstance(results, dict):
            return results
        why = "not a JSON object"
    if not quiet:
        log.warning("%s is unreadable (%s); running the job again", path, why)
    return None


def completed_results(run_dir: Path, cfg: DictConfig) -> dict | None:
    """The results a previous job with this configuration finished in `run_dir`, if any."""
    results = read_results(run_dir)
    return results if finished_by(results, cfg, run_dir) else None


def refusal(run_dir: Path, cfg: DictConfig) -> str | None:
    """The sentence refusing `cfg` in `run_dir` when the folder holds the finished results of
    another configuration (None when it does not): they are never replaced."""
    return results_refusal(Path(run_dir), cfg, read_results(run_dir, quiet=True))


def results_refusal(run_dir: Path, cfg: DictConfig, results: dict | None) -> str | None:
    if results is None or finished_by(results, cfg, run_dir):
        return None
    keys = _differing_keys(run_dir, cfg, results)
    which = f"different {', '.join(keys)}" if keys else "its config.yaml does not say which keys"
    return (
        f"{run_dir} holds the finished results of another configuration ({which}); they are "
        f"kept: run with the overrides that wrote them, or write elsewhere "
        f"(hydra.run.dir=NEW_FOLDER)."
    )


def _differing_keys(run_dir: Path, cfg: DictConfig, results: dict) -> list[str]:
    from medssl.training.checkpoint import differing_keys

    stored = stored_config(run_dir / "config.yaml")
    # A config.yaml that is not the results' own cannot say what differs from them.
    if stored is None or not finished_by(results, stored, run_dir):
        return []
    keys = differing_keys(shaping_config(stored), shaping_config(cfg))
    # `label_seed: ${seed}` follows seed: name the keys the command line sets.
    set_directly = [key for key in keys if not _interpolated(cfg, key)]
    return set_directly or keys


def _interpolated(cfg: DictConfig, key: str) -> bool:
    parent, _, leaf = key.rpartition(".")
    try:
        node = OmegaConf.select(cfg, parent) if parent else cfg
    except Exception:
        return False
    return isinstance(node, DictConfig) and leaf in node and OmegaConf.is_interpolation(node, leaf)


def stored_config(path: Path) -> DictConfig | None:
    try:
        stored = OmegaConf.load(path)
    except Exception:  # absent, torn or not YAML: no record to compare with
        return None
    return stored if isinstance(stored, DictConfig) else None


def save_config(cfg: DictConfig, path: Path) -> None:
    """config.yaml, resolved, written atomically (a full disk leaves the old one whole). One
    that already records this configuration is left as it is, so a rerun changes no byte of
    the folder's record for keys that shape nothing (skip_done, cache, logger)."""
    stored = stored_config(path)
    if stored is not None and config_hash(stored) == config_hash(cfg):
        return
    write_bytes(path, OmegaConf.to_yaml(cfg, resolve=True).encode())
