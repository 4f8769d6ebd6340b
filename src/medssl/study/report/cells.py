"""The study as cells: the runs of one dataset, variant and label fraction, over seeds."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from medssl.config_roles import role_of
from medssl.config_schema import PRETRAINING
from medssl.study.report.collect import Run
from medssl.study.report.stats import Estimate, estimate
from medssl.study.report.variants import Variant, label_variants

REFERENCE_ROW = "published reference (all labels)"


@dataclass(frozen=True)
class Reference:
    """A published result: `name` (None in runs from before there were several), value, citation,
    and, where the dataset config gives them, the `model` and how it was trained (`protocol`:
    end_to_end, linear or knn; conf/medmnist_base.yaml)."""

    name: str | None
    value: float
    source: str
    model: str | None = None
    init: str | None = None
    protocol: str | None = None

    @property
    def label(self) -> str:
        return f"published: {self.name} (all labels)" if self.name else REFERENCE_ROW

    @property
    def described(self) -> str:
        """`MedMNIST+ DINO linear probe (DINO ViT-B/16, dino weights, linear)`: what it is of."""
        init = "from scratch" if self.init == "scratch" else self.init and f"{self.init} weights"
        details = [self.model, init, self.protocol and self.protocol.replace("_", "-")]
        name = self.name or "reference"
        return f"{name} ({', '.join(d for d in details if d)})" if any(details) else name


def reference_notes(references: list[Reference]) -> list[str]:
    """One note per cited source, naming what each of its numbers is of where runs say so."""
    by_source: dict[str, list[Reference]] = {}
    for reference in references:
        by_source.setdefault(reference.source, []).append(reference)
    notes = []
    for source, cited in by_source.items():
        if all(r.described == (r.name or "reference") for r in cited):
            notes.append(f"Published reference: {source}.")
        else:
            notes.append(f"Published reference: {source}: {'; '.join(r.described for r in cited)}.")
    return notes


def run_references(record: dict, metric: str) -> list[Reference]:
    """`reference/<name>/<metric>` entries of a results.json, or the older `reference/<metric>`."""
    found = []
    for key, value in record.items():
        parts = key.split("/")
        if parts[0] != "reference" or parts[-1] != metric or isinstance(value, bool):
            continue
        if not isinstance(value, (int, float)) or len(parts) not in (2, 3):
            continue
        name = parts[1] if len(parts) == 3 else None
        prefix = f"reference/{name}/" if name else "reference/"
        source = str(record.get(prefix + "source") or "unknown source")
        model, init, protocol = (record.get(prefix + f) for f in ("model", "init", "protocol"))
        found.append(Reference(name, float(value), source, model, init, protocol))
    return found


def reported(runs: list[Run], metric: str) -> bool:
    """Whether a finished one of `runs` has the metric, or none finished (failures stay shown):
    a method without a protocol, such as an SSL encoder under `classifier`, reports nothing."""
    finished = [run for run in runs if run.finished]
    return not finished or any(metric in run.record for run in finished)


def _pairing_parts(variant: Variant) -> tuple[str, ...]:
    """The parts that must agree for a pair: all but those naming a PRETRAINING key other
    than the backbone (medssl.config_schema.ROLES)."""
    return tuple(part for part in variant.parts if not _own_pretraining(part))


def _own_pretraining(part: str) -> bool:
    key = part.split("=", 1)[0]
    if "=" not in part or key.split(".")[0] == "backbone":
        return False
    return role_of(key.replace("/", ".")) == PRETRAINING


class RunGroup:
    """Runs, split into the finished and the failed."""

    runs: list[Run]

    @property
    def finished(self) -> list[Run]:
        return [run for run in self.runs if run.finished]

    @property
    def failed(self) -> list[Run]:
        return [run for run in self.runs if not run.finished]


@dataclass
class Cell(RunGroup):
    dataset: str
    variant: Variant
    label_frac: float
    confidence: float  # the level of its intervals (the report's options)
    runs: list[Run] = field(default_factory=list)

    def values(self, metric: str) -> list[float]:
        return [v for run in self.finished if (v := run.value(metric)) is not None]

    def estimate(self, metric: str) -> Estimate | None:
        return estimate(self.values(metric), self.confidence)


class Study(RunGroup):
    """Every run under one folder, with its variant, grouped into cells; every interval over
    its seeds is at level `confidence`."""

    def __init__(self, folder: Path, runs: list[Run], *, confidence: float) -> None:
        self.folder = Path(folder)
        self.runs = runs
        self.confidence = confidence
        self.variant_of = dict(zip(map(id, runs), label_variants(runs)))
        self.cells: dict[tuple, Cell] = {}
        for run in runs:
            key = (run.dataset, self.variant(run), run.label_frac)
            self.cells.setdefault(key, Cell(*key, confidence=confidence)).runs.append(run)

    def variant(self, run: Run) -> Variant:
        return self.variant_of[id(run)]

    @property
    def datasets(self) -> list[str]:
        return sorted({run.dataset for run in self.runs})

    @property
    def result_keys(self) -> set[str]:
        return {key for run in self.finished for key in run.record}

    @property
    def seeds(self) -> list:
        return sorted({run.seed for run in self.runs if run.seed is not None})

    def variants_in(self, dataset: str) -> list[Variant]:
        return sorted({v for d, v, _ in self.cells if d == dataset}, key=lambda v: v.label)

    def task_of(self, dataset: str) -> str | None:
        """The task its finished runs name (`task` in results.json); None when none names one."""
        tasks = {
            str(r.record["task"])
            for r in self.finished
            if r.dataset == dataset and "task" in r.record
        }
        return tasks.pop() if len(tasks) == 1 else None

    def fractions_in(self, dataset: str) -> list[float]:
        return sorted({f for d, _, f in self.cells if d == dataset})

    def cell(self, dataset: str, variant: Variant, label_frac: float) -> Cell | None:
        return self.cells.get((dataset, variant, label_frac))

    def reports(self, dataset: str, variant: Variant, metric: str) -> bool:
        """`reported` over the variant's runs of the dataset."""
        runs = [r for r in self.runs if r.dataset == dataset and self.variant(r) == variant]
        return reported(runs, metric)

    def has_metric(self, dataset: str, metric: str) -> bool:
        """`reported` over every run of the dataset."""
        return reported([run for run in self.runs if run.dataset == dataset], metric)

    def cells_missing_seeds(self) -> list[Cell]:
        """Cells holding neither a result nor an error for some seed the others ran."""
        expected = set(self.seeds)
        return [c for c in self.cells.values() if not expected <= {r.seed for r in c.runs}]

    def empty_cells(self) -> int:
        """Variant × label-fraction combinations of a dataset without any run."""
        return sum(
            len(self.variants_in(d)) * len(self.fractions_in(d))
            - sum(1 for key in self.cells if key[0] == d)
            for d in self.datasets
        )

    def references(self, dataset: str, metric: str) -> list[Reference]:
        """Published all-labels results for `metric` the runs carry, in the order their dataset
        config lists them; none for a val metric (the papers report test)."""
        if not metric.startswith("test/"):
            return []
        found: dict[Reference, None] = {}
        for run in self.finished:
            if run.dataset == dataset:
                found.update(dict.fromkeys(run_references(run.record, metric.rsplit("/", 1)[-1])))
        return list(found)

    def baseline_of(self, dataset: str, variant: Variant) -> Variant | None:
        """The supervised variant `variant` is paired with: the one with the same parts, else
        the one that differs only in keys shaping the variant's own pretraining (its
        augmentation, loss, optimiser; not the backbone both are scored with), the plainest
        first. The pairs share dataset, label fraction, seed and label seed (paired_values)."""
        if variant.is_supervised:
            return None
        supervised = [c for c in self.variants_in(dataset) if c.is_supervised]
        for candidate in supervised:
            if candidate.parts == variant.parts:
                return candidate
        wanted = _pairing_parts(variant)
        matching = [c for c in supervised if _pairing_parts(c) == wanted]
        return min(matching, key=lambda c: (len(c.parts), c.label), default=None)

    def paired_values(
        self, dataset: str, variant: Variant, baseline: Variant, label_frac: float, metric: str
    ) -> list[tuple[float, float]]:
        """(variant, baseline) values of the runs that share seed and label seed."""
        mine, theirs = (
            self.cell(dataset, variant, label_frac),
            self.cell(dataset, baseline, label_frac),
        )
        if mine is None or theirs is None:
            return []
        baseline_by_seeds = {run.seeds: run.value(metric) for run in theirs.finished}
        pairs = []
        for run in mine.finished:
            value, partner = run.value(metric), baseline_by_seeds.get(run.seeds)
            if value is not None and partner is not None:
                pairs.append((value, partner))
        return pairs
