"""Which numbers the report shows, under which protocol, and which way is better.

Result keys read `<split>/<protocol>/<metric>`, e.g. `test/linear/auroc`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from medssl.errors import MedsslError

PROTOCOLS = ("linear", "finetune", "knn", "classifier")
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


def report_metrics(result_keys: set[str], chosen: Sequence[str]) -> list[str]:
    """The keys the report tabulates, from the report's `metrics` (ReportOptions): a results.json
    key (`test/linear/auroc`) as it is, then each metric name (`auroc`) as `test/<protocol>/<name>`
    for every protocol whose results hold it, protocol by protocol."""
    keys = [item for item in chosen if "/" in item]
    names = [item for item in chosen if "/" not in item]
    protocols = [p for p in PROTOCOLS if any(k.startswith(f"test/{p}/") for k in result_keys)]
    expanded = [f"test/{p}/{m}" for p in protocols for m in names]
    found = [key for key in expanded if key in result_keys]
    if result_keys and not found and not any(key in result_keys for key in keys):
        raise MedsslError(
            f"no results.json has {chosen[0]!r}; metrics are keys like test/linear/auroc or "
            "names like auroc (for every protocol)."
        )
    return list(dict.fromkeys([*keys, *found]))


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
