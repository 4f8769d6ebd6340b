"""A folder of images plus a `labels.csv` with the columns `filename,label` (and optionally
`split` with train/val/test). Filenames are relative to the folder.

Class names are `dataset.classes` when given (then any other label is an error naming the CSV
line), else the sorted distinct labels, numerically sorted when they are all integers (grades
0-4 stay in order). Without a `split` column, val and test are carved out by ratio.
"""

from __future__ import annotations

import csv
import functools
import logging
from pathlib import Path

from medssl.data.image_folder import SPLITS, Listing, load_image_folder
from medssl.data.splits import DatasetSplits
from medssl.errors import MedsslError

log = logging.getLogger(__name__)


def _sorted_labels(labels: set[str]) -> list[str]:
    try:
        return sorted(labels, key=int)
    except ValueError:
        return sorted(labels)


def read_label_rows(csv_path: Path) -> list[tuple[int, dict[str, str]]]:
    """`(line number, row)` for every data row; the header must name filename and label."""
    if not csv_path.is_file():
        raise MedsslError(
            f"the label file {csv_path} does not exist; set dataset.csv_file to its path (relative to dataset.root)."
        )
    with open(csv_path, newline="") as handle:
        reader = csv.DictReader(handle)
        header = [h.strip() for h in reader.fieldnames or []]
        if "filename" not in header or "label" not in header:
            raise MedsslError(
                f"{csv_path} must start with a header naming the columns filename,label "
                f"(optionally split); it has {header}."
            )
        reader.fieldnames = header
        rows = [
            (reader.line_num, {k: (v or "").strip() for k, v in row.items() if k}) for row in reader
        ]
    if not rows:
        raise MedsslError(f"{csv_path} lists no images.")
    return rows


def csv_listing(folder: Path, csv_file: str, classes: list[str] | None) -> Listing:
    """The images `folder/csv_file` names, with their labels and (optionally) splits."""
    csv_path = folder / csv_file
    rows = read_label_rows(csv_path)
    class_names = (
        [str(c) for c in classes] if classes else _sorted_labels({r["label"] for _, r in rows})
    )
    index = {c: i for i, c in enumerate(class_names)}
    paths, labels, owner, seen = [], [], [], {}
    for line, row in rows:
        filename, label, split = row["filename"], row["label"], row.get("split", "train") or "train"
        if label not in index:
            raise MedsslError(
                f"{csv_path}, line {line}: {filename} has the label {label!r}, which is not "
                f"one of dataset.classes ({', '.join(class_names)})."
            )
        if split not in SPLITS:
            raise MedsslError(
                f"{csv_path}, line {line}: split {split!r} must be train, val or test."
            )
        path = folder / filename
        if not path.is_file():
            raise MedsslError(f"{csv_path}, line {line}: the image {path} does not exist.")
        if filename in seen:
            raise MedsslError(
                f"{csv_path}, line {line}: {filename} is listed twice (first on line {seen[filename]})."
            )
        seen[filename] = line
        paths.append(path)
        labels.append(index[label])
        owner.append(split)
    # The cached array follows the CSV's row order, so the CSV's text is part of the cache key:
    # a reordered CSV must not pair cached images with the wrong labels.
    return Listing(
        str(csv_path),
        class_names,
        paths,
        labels,
        owner,
        cache_kind=f"csv-{Path(csv_file).stem}",
        cache_extra=csv_path.read_text(),
    )


def load_csv_labels(
    root: str, *, csv_file: str, classes: list[str] | None, **folder_options
) -> DatasetSplits:
    """A folder listed by `csv_file`; `folder_options` are `load_image_folder`'s (size,
    channels, val_frac, test_frac, split_seed, task, name, cache, dtype, store_dir, intensity),
    so both loaders decode, cache and split the same way."""
    return load_image_folder(
        root,
        listing=functools.partial(csv_listing, csv_file=csv_file, classes=classes),
        **folder_options,
    )
