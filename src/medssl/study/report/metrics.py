"""Which numbers the report shows, under which protocol, and which way is better.

Result keys read `<split>/<protocol>/<metric>`, e.g. `test/linear/auroc`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from medssl.errors import MedsslError

PROTOCOLS = ("linear", "finetune", "knn", "classifier")
# The last two exist only where the runs measured robustness (eval.robustness.enabled=true).
MAIN_METRICS = ("auroc", "acc", "balanced_acc", "ece_ts", "aurc", "auroc_corrupt", "ece_ts_corrupt")
CURVE_METRICS = ("auroc", "acc", "ece_ts")
# Errors and risks: a smaller value is the better model.
LOWER_IS_BETTER = ("ece", "mce", "nll", "brier", "aurc", "loss")
DISPLAY_NAMES = {
    "auroc": "AUROC",
    "acc": "accuracy",
    "balanced_acc": "balanced accuracy",
    "ece": "ECE",
    "ece_ts": "ECE after temperature scaling",
    "aurc": "AURC",
    "nll": "NLL",
    "brier": "Brier score",
    "auroc_corrupt": "AUROC under corruption, mean over corruptions and severities",
    "ece_ts_corrupt": "ECE after temperature scaling under corruption, mean",
}


def protocol_of(key: str) -> str:
    parts = key.split("/")
    return parts[1] if len(parts) >= 3 else "other"


def name_of(key: str) -> str:
    """The metric after split and protocol: `auroc`, or `recall/1` for a per-class recall."""
    parts = key.split("/")
    return "/".join(parts[2:]) if len(parts) >= 3 else parts[-1]


def display_name(key: str) -> str:
    """`AUROC`; `recall of class 1`; `AUROC (corrupt/noise/3)` for a key below the protocol."""
    name = name_of(key)
    if name.startswith("recall/"):
        return f"recall of class {name.split('/', 1)[1]}"
    if name in DISPLAY_NAMES or "/" not in name:
        return DISPLAY_NAMES.get(name, name)
    where, leaf = name.rsplit("/", 1)
    return f"{DISPLAY_NAMES.get(leaf, leaf)} ({where})"


def file_stem(key: str) -> str:
    """`test/linear/auroc` -> `auroc`: figures only show the test split of one protocol."""
    return name_of(key).replace("/", "_") if key.startswith("test/") else key.replace("/", "_")


def in_unit_interval(key: str) -> bool:
    """Rates, AUROC, ECE and AURC lie in [0, 1]; NLL and losses do not."""
    return not key.rsplit("/", 1)[-1].startswith(("nll", "loss"))


def lower_is_better(key: str) -> bool:
    return key.rsplit("/", 1)[-1].startswith(LOWER_IS_BETTER)


def report_metrics(result_keys: set[str], requested: Sequence[str] | None) -> list[str]:
    """The requested keys, or the main metrics of every protocol the results hold."""
    if requested:
        missing = [key for key in requested if key not in result_keys]
        if result_keys and len(missing) == len(requested):
            raise MedsslError(
                f"no results.json has {missing[0]!r}; metrics are keys like test/linear/auroc."
            )
        return list(dict.fromkeys(requested))
    protocols = [p for p in PROTOCOLS if any(k.startswith(f"test/{p}/") for k in result_keys)]
    return [
        f"test/{p}/{m}" for p in protocols for m in MAIN_METRICS if f"test/{p}/{m}" in result_keys
    ]


def by_protocol(metrics: Iterable[str]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for key in metrics:
        grouped.setdefault(protocol_of(key), []).append(key)
    return grouped


def curve_metrics(metrics: Sequence[str]) -> list[str]:
    """AUROC, accuracy and calibration of the first protocol, or the first metric asked for."""
    if not metrics:
        return []
    first = by_protocol(metrics)[protocol_of(metrics[0])]
    chosen = [k for k in first if k.startswith("test/") and name_of(k) in CURVE_METRICS]
    return chosen or [metrics[0]]
