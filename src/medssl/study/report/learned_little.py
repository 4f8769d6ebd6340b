"""SSL variants whose val scores are no better than the random-init floor: the report says so
("pretraining learned little here") instead of leaving the reader to spot it in the tables.

Judged on val, never test: paired seed by seed against `random` (same seed and label seed), at
each label fraction both ran; flagged where the interval of the paired difference reaches zero
or lies below it at every fraction that has an interval (two seeds or more).
"""

from __future__ import annotations

from medssl.study.report.cells import Study
from medssl.study.report.document import Block, Paragraph
from medssl.study.report.stats import level_text, paired_difference
from medssl.study.report.tables import percent
from medssl.study.report.variants import Variant

VAL_METRICS = ("val/linear/auroc", "val/knn/auroc", "val/finetune/auroc")


def _self_supervised(study: Study, dataset: str, variant: Variant) -> bool:
    """A method class that trains without labels (`trains`, not `uses_labels`): not the
    supervised baseline, not `random` or `frozen`, which train nothing."""
    from hydra.utils import get_class

    for run in study.runs:
        if run.dataset == dataset and study.variant(run) == variant:
            target = ((run.config or {}).get("method") or {}).get("_target_")
            try:
                method = get_class(target)
            except Exception:  # an older run's class that no longer exists: not judged
                return False
            return bool(method.trains and not method.uses_labels)
    return False


def _floor_for(study: Study, dataset: str, variant: Variant) -> Variant | None:
    """The random-init variant to compare with: the only one, or the one whose parts
    (backbone, evaluation settings) the variant shares."""
    floors = [v for v in study.variants_in(dataset) if v.method.lower() == "random"]
    if len(floors) == 1:
        return floors[0]
    shared = [f for f in floors if set(f.parts) <= set(variant.parts)]
    return shared[0] if len(shared) == 1 else None


def _differences(study: Study, dataset: str, variant: Variant, floor: Variant, metric: str):
    """Per label fraction, the paired (variant − floor) difference of `metric`."""
    found = {}
    for frac in study.fractions_in(dataset):
        pairs = study.paired_values(dataset, variant, floor, frac, metric)
        paired = paired_difference(pairs, lower_is_better=False, confidence=study.confidence)
        if paired is not None and paired.difference.half_width is not None:
            found[frac] = paired.difference
    return found


def learned_little_blocks(study: Study, dataset: str) -> list[Block]:
    metric = next((m for m in VAL_METRICS if study.has_metric(dataset, m)), None)
    if metric is None:
        return []
    flagged = []
    for variant in study.variants_in(dataset):
        if not _self_supervised(study, dataset, variant):
            continue
        floor = _floor_for(study, dataset, variant)
        if floor is None:
            continue
        differences = _differences(study, dataset, variant, floor, metric)
        if differences and all(d.mean - d.half_width <= 0 for d in differences.values()):
            shown = ", ".join(
                f"{percent(f)}: {d.mean:+.3f} ± {d.half_width:.3f}" for f, d in differences.items()
            )
            flagged.append(f"{variant.label} ({shown})")
    if not flagged:
        return []
    return [
        Paragraph(
            f"**Pretraining learned little here:** the {metric} of "
            + "; ".join(flagged)
            + " is no better than the random-init floor (`random`) at any label fraction: "
            f"the {level_text(study.confidence)} interval of the paired difference, seed by "
            "seed, reaches zero or lies below it. Try another augmentation preset or a longer "
            "pretraining, chosen on val (medssl.cli.tuned_study), before reading test."
        )
    ]
