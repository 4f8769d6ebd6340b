"""`inspect.md`, `inspect.json` and the PNGs beside them, for one loaded dataset."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from medssl.atomic_files import write_bytes, write_json
from medssl.inspection import figures
from medssl.inspection.duplicates import DuplicatePair, find_duplicates
from medssl.inspection.groups import Groups, groups_of, splits_of
from medssl.inspection.image_stats import intensity_histograms, mean_intensity, split_stats

log = logging.getLogger(__name__)

COUNTS_PNG, SAMPLES_PNG, INTENSITY_PNG = "class_counts.png", "samples.png", "intensity.png"
ROW_TITLE = {"class": "class", "label": "label (positives)", "unlabelled": "group"}
WORD = {"class": ("class", "classes"), "label": ("label", "labels"), "unlabelled": ("group", "")}


def _ratio(value: float | None) -> str:
    return "∞ (an empty group)" if value is None else f"{value:.2f}"


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]


def overview(data, groups: Groups, stats: dict[str, dict]) -> list[str]:
    head = next(iter(stats.values()))
    what = (
        "Unlabelled images"
        if groups.kind == "unlabelled"
        else f"{data.task} task, {groups.ranked} {WORD[groups.kind][1]}"
    )
    sizes = " / ".join(f"{s['n']} {name}" for name, s in stats.items())
    shape = " × ".join(map(str, head["shape"]))
    return [
        f"# Dataset inspection: {data.name}",
        "",
        f"{what}; {sizes} images of {shape} {head['dtype']}.",
        "",
    ]


def images_section(stats: dict[str, dict]) -> list[str]:
    rows = [
        [name, s["n"], " × ".join(map(str, s["shape"])), s["dtype"], s["min"], s["max"]]
        + [_number(s["mean"]), _number(s["std"])]
        for name, s in stats.items()
    ]
    header = ["split", "images", "shape (C × H × W)", "dtype", "min", "max", "mean", "std"]
    return ["## Images", "", *_table(header, rows), ""]


def count_section(groups: Groups, sizes: dict[str, int]) -> tuple[list[str], dict]:
    columns = {split: groups.counts(split) for split in groups.masks}
    columns["all"] = groups.total_counts()
    sizes = {**sizes, "all": sum(sizes.values())}
    rows = [
        [name]
        + [f"{columns[s][r]} ({100 * columns[s][r] / max(sizes[s], 1):.1f} %)" for s in columns]
        for r, name in enumerate(groups.names)
    ]
    ratios = {s: groups.imbalance(columns[s]) for s in columns}
    if groups.kind != "unlabelled":
        rows.append(["**imbalance (max/min)**"] + [_ratio(ratios[s]) for s in columns])
    lines = ["## Class counts", ""]
    if groups.kind == "label":
        per_image = {
            s: float(m[: groups.ranked].sum(0).float().mean()) for s, m in groups.masks.items()
        }
        lines += [
            "Positives per label and their prevalence in the split; an image may carry several "
            "labels (mean per image: "
            + ", ".join(f"{s} {v:.2f}" for s, v in per_image.items())
            + "), and the last row counts images with none. The imbalance ratio compares the "
            "labels' positives.",
            "",
        ]
    elif groups.kind == "class":
        lines += ["Images per class and their share of the split.", ""]
    else:
        lines += ["No labels: every image is in one group.", ""]
    lines += [
        *_table([ROW_TITLE[groups.kind], *columns], rows),
        "",
        f"![counts per split]({COUNTS_PNG})",
        "",
    ]
    summary = {
        "counts": {s: dict(zip(groups.names, columns[s], strict=True)) for s in columns},
        "imbalance_ratio": ratios if groups.kind != "unlabelled" else None,
    }
    return lines, summary


def duplicate_section(pairs: list[DuplicatePair]) -> list[str]:
    rows = []
    for pair in pairs:
        examples = ", ".join(f"{pair.first}[{i}] = {pair.second}[{j}]" for i, j in pair.examples)
        where = pair.first if pair.first == pair.second else f"{pair.first} – {pair.second}"
        rows.append([where, pair.images, pair.label_conflicts, examples or "–"])
    return [
        "## Exact duplicates",
        "",
        "Images whose bytes hash equal: within a split, copies of an earlier image; across two "
        "splits, images of the second with a copy in the first.",
        "",
        *_table(["splits", "images with a copy", "with another label", "examples"], rows),
        "",
    ]


def draw_samples(groups: Groups, per_row: int, seed: int) -> list[torch.Tensor]:
    """Up to `per_row` train-split indices per row, drawn without replacement under `seed`."""
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for mask in groups.masks["train"]:
        members = mask.nonzero().squeeze(1)
        chosen.append(members[torch.randperm(len(members), generator=generator)[:per_row]])
    return chosen


def write_inspection(
    data, out: Path, *, tiles_per_class: int, duplicate_examples: int, seed: int
) -> dict:
    """Write the inspection of `data` (any loader's result) into `out`; returns inspect.json."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    splits = splits_of(data)
    groups = groups_of(data)
    stats = {name: split_stats(split) for name, split in splits.items()}
    count_lines, summary = count_section(groups, {name: s["n"] for name, s in stats.items()})
    means = _draw_figures(data, out, groups, summary, splits["train"], tiles_per_class, seed)
    pairs = find_duplicates(splits, duplicate_examples)
    lines = [
        *overview(data, groups, stats),
        *images_section(stats),
        *count_lines,
        *_samples_and_intensity_lines(groups, means, tiles_per_class, seed),
        *duplicate_section(pairs),
    ]
    result = {
        "dataset": data.name,
        "task": getattr(data, "task", None),
        "groups": groups.kind,
        "names": groups.names,
        "images": stats,
        **summary,
        "mean_level_train": dict(zip(groups.names, means, strict=True)),
        "duplicates": [
            {
                "splits": [p.first, p.second],
                "images": p.images,
                "label_conflicts": p.label_conflicts,
                "examples": [list(e) for e in p.examples],
            }
            for p in pairs
        ],
    }
    write_bytes(out / "inspect.md", "\n".join(lines).encode())
    write_json(out / "inspect.json", result)
    log.info("Wrote the inspection of %s to %s", data.name, out / "inspect.md")
    return result


def _draw_figures(data, out: Path, groups, summary: dict, train, tiles_per_class: int, seed: int):
    """The three PNGs; returns each group's mean training-image level (None for an empty one)."""
    word = WORD[groups.kind][0]
    ratio = summary["imbalance_ratio"]
    figures.count_bars(
        out / COUNTS_PNG,
        groups.names,
        {s: groups.counts(s) for s in groups.masks},
        f"{data.name}: "
        + {"label": "positives per label", "class": "images per class"}.get(groups.kind, "images")
        + (f", imbalance (max/min) {_ratio(ratio['all'])}" if ratio else ""),
    )
    train_counts = groups.counts("train")
    figures.sample_tiles(
        out / SAMPLES_PNG,
        groups.names,
        [train.images[i] for i in draw_samples(groups, tiles_per_class, seed)],
        train_counts,
        tiles_per_class,
        tuple(train.images.shape[-2:]),
        word,
    )
    histograms = intensity_histograms(train.images, groups.masks["train"])
    figures.intensity_plot(out / INTENSITY_PNG, groups.names, histograms, word)
    return [
        m if c else None
        for m, c in zip(mean_intensity(histograms).tolist(), train_counts, strict=True)
    ]


def _samples_and_intensity_lines(groups, means: list, tiles_per_class: int, seed: int) -> list:
    word = WORD[groups.kind][0]
    train_counts = groups.counts("train")
    return [
        "## Sample images",
        "",
        f"{tiles_per_class} training images per {word}, drawn with seed {seed}.",
        "",
        f"![sample images]({SAMPLES_PNG})",
        "",
        "## Pixel intensity",
        "",
        f"Mean level (0-255, all channels) of each {word}'s training images:",
        "",
        *_table(
            [ROW_TITLE[groups.kind], "images", "mean level"],
            [[n, c, _number(m)] for n, c, m in zip(groups.names, train_counts, means, strict=True)],
        ),
        "",
        f"![pixel intensity per {word}]({INTENSITY_PNG})",
        "",
    ]
