"""Which numbers the report shows, under which protocol, and which way is better.

Result keys read `<split>/<protocol>/<metric>`, e.g. `test/linear/auroc`. Each task is judged
by its own main metrics (`MAIN_METRICS`): wherever the report shows a protocol's AUROC it shows
the task's other main metrics beside it, and compares each against supervised.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from medssl.data.task import Task
from medssl.errors import MedsslError

PROTOCOLS = ("linear", "finetune", "knn", "classifier")
CURVE_METRICS = ("auroc", "acc", "ece_ts")
# What a task is judged by, AUROC first: graded (ordinal) tasks by quadratic-weighted kappa and
# the mean absolute grade error as well (RetinaMNIST, as diabetic-retinopathy grading is), and
# multi-label ones by macro average precision as well (ChestMNIST's 14 findings, most of them
# rare, where AUROC alone flatters). Names as medssl.evaluation.metrics writes them.
MAIN_METRICS = {
    Task.BINARY: ("auroc",),
    Task.MULTICLASS: ("auroc",),
    Task.ORDINAL: ("auroc", "kappa", "grade_mae"),
    Task.MULTILABEL: ("auroc", "average_precision"),
}
# Which of our protocols a published reference's training compares like for like with
# (its `protocol` in the dataset config): end to end, every weight trained on the labels.
REFERENCE_PROTOCOLS = {
    "end_to_end": ("classifier", "finetune"),
    "linear": ("linear",),
    "knn": ("knn",),
}
# Errors and risks: a smaller value is the better model.
LOWER_IS_BETTER = ("ece", "mce", "nll", "brier", "aurc", "loss", "grade_mae")
DISPLAY_NAMES = {
    "auroc": "AUROC",
    "kappa": "Cohen's kappa, quadratic-weighted on ordinal tasks",
    "grade_mae": "mean absolute grade error",
    "average_precision": "macro average precision",
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
    """Rates, AUROC, ECE and AURC lie in [0, 1]; NLL, losses and grade errors do not."""
    return not key.rsplit("/", 1)[-1].startswith(("nll", "loss", "grade_mae"))


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


def like_for_like(reference_protocol: str | None, key: str) -> bool:
    """Whether a published result trained by `reference_protocol` compares with `key`'s protocol."""
    return protocol_of(key) in REFERENCE_PROTOCOLS.get(reference_protocol, ())


def main_metrics(task: str | None) -> tuple[str, ...]:
    """The metric names `task` is judged by; a run that names no task (an older results.json)
    is judged as binary and multi-class ones are, by AUROC."""
    return MAIN_METRICS.get(task, MAIN_METRICS[Task.BINARY])


def is_main(key: str, task: str | None) -> bool:
    return name_of(key) in main_metrics(task)


def with_main_metrics(metrics: Sequence[str], task: str | None, result_keys: set[str]):
    """`metrics`, each `<split>/<protocol>/auroc` followed by the task's other main metrics of
    that split and protocol that the runs hold (`test/linear/kappa`, `test/linear/grade_mae`)."""
    keys = []
    for key in metrics:
        keys.append(key)
        if key.count("/") == 2 and key.endswith("/auroc"):
            prefix = key.rsplit("/", 1)[0]
            keys += [
                f"{prefix}/{m}" for m in main_metrics(task)[1:] if f"{prefix}/{m}" in result_keys
            ]
    return list(dict.fromkeys(keys))


def by_protocol(metrics: Iterable[str]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for key in metrics:
        grouped.setdefault(protocol_of(key), []).append(key)
    return grouped


def curve_metrics(metrics: Sequence[str], task: str | None = None) -> list[str]:
    """The task's main metrics, accuracy and calibration of the first protocol, or the first
    metric asked for."""
    if not metrics:
        return []
    first = by_protocol(metrics)[protocol_of(metrics[0])]
    names = (*main_metrics(task), *CURVE_METRICS)
    chosen = [k for k in first if k.startswith("test/") and name_of(k) in names]
    return chosen or [metrics[0]]
