"""A labelled image folder, ImageFolder style: `root/train/<class>/*.png|jpg`.

`root/val/` and `root/test/` are used when present (with the same class folder names);
whichever is missing is carved out of `train` by a stratified ratio split. Class names are the
sorted folder names of `train/`; APTOS-like grades can be declared `task: ordinal`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from medssl.data.image_files import IMAGE_SUFFIXES, list_images, load_split_images
from medssl.data.intensity import IntensityMapping
from medssl.data.ratio_split import stratified_split
from medssl.data.splits import DatasetSplits, Split
from medssl.data.task import Task
from medssl.errors import MedsslError

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


def resolve_task(task: str | None, n_classes: int) -> Task:
    """`null` means binary for two classes, multiclass otherwise."""
    if task is None:
        return Task.BINARY if n_classes == 2 else Task.MULTICLASS
    if task not in list(Task) or task == Task.MULTILABEL:
        raise MedsslError(
            f"dataset.task must be binary, multiclass or ordinal for a folder dataset, got {task!r}."
        )
    return Task(task)


def existing_root(root: str | Path) -> Path:
    path = Path(root).expanduser()
    if not path.is_dir():
        raise MedsslError(f"dataset.root {path} is not a folder; set dataset.root=/path/to/images.")
    return path


def split_assignment(
    labels: np.ndarray,
    owner: np.ndarray,
    val_frac: float,
    test_frac: float,
    split_seed: int,
) -> dict[str, np.ndarray]:
    """Indices of each split's images: those whose `owner` names it, and a split that owns
    none carved out of train by a stratified ratio split (before any image is decoded)."""
    assigned = {s: np.flatnonzero(owner == s) if (owner == s).any() else None for s in SPLITS}
    train = assigned["train"]
    need_val, need_test = assigned["val"] is None, assigned["test"] is None
    if need_val or need_test:
        carved = stratified_split(
            labels[train],
            val_frac if need_val else 0.0,
            test_frac if need_test else 0.0,
            split_seed,
        )
        assigned = {
            "train": train[carved["train"]],
            "val": train[carved["val"]] if need_val else assigned["val"],
            "test": train[carved["test"]] if need_test else assigned["test"],
        }
    return assigned


@dataclass
class Listing:
    """The labelled images a folder holds: each one's path, class index and split (`train`,
    `val` or `test`), the class names, and the names the log and the decoded-image cache use."""

    source: str
    class_names: list[str]
    paths: list[Path]
    labels: list[int]
    owner: list[str]
    cache_kind: str
    cache_extra: str = ""


def class_folder_listing(folder: Path) -> Listing:
    """`folder/<split>/<class>/*`: classes are the sorted folder names of `train/`."""
    train_dir = folder / "train"
    if not train_dir.is_dir():
        raise MedsslError(f"{folder} has no train/ folder; expected {folder}/train/<class>/*.png.")
    classes = sorted(
        p.name for p in train_dir.iterdir() if p.is_dir() and not p.name.startswith(".")
    )
    if not classes:
        raise MedsslError(f"{train_dir} has no class folders; expected {train_dir}/<class>/*.png.")

    paths, labels, owner = [], [], []
    present = [s for s in SPLITS if (folder / s).is_dir()]
    for split in present:
        for class_dir in sorted(
            p for p in (folder / split).iterdir() if p.is_dir() and not p.name.startswith(".")
        ):
            if class_dir.name not in classes:
                raise MedsslError(
                    f"{class_dir} is a class folder that {train_dir} does not have; "
                    f"the classes are {', '.join(classes)}."
                )
            files = list_images(class_dir, recursive=True)
            if not files:
                raise MedsslError(
                    f"{class_dir} holds no images ({', '.join(IMAGE_SUFFIXES)}); "
                    f"add some or remove the folder."
                )
            paths += files
            labels += [classes.index(class_dir.name)] * len(files)
            owner += [split] * len(files)
    return Listing(f"image folder {folder}", classes, paths, labels, owner, "image_folder")


def load_image_folder(
    root: str,
    *,
    size: int,
    channels: int,
    val_frac: float,
    test_frac: float,
    split_seed: int,
    task: str | None,
    name: str | None,
    cache: bool,
    dtype: str,
    store_dir: str | None,
    intensity: IntensityMapping | None,
    listing: Callable[[Path], Listing] = class_folder_listing,
) -> DatasetSplits:
    """A labelled folder, split, then decoded into the image store (one file per split);
    `listing` finds its images and labels: class folders here, a CSV for
    `csv_labels.load_csv_labels`."""
    folder = existing_root(root)
    found = listing(folder)
    labels = np.asarray(found.labels, dtype=np.int64)
    assigned = split_assignment(labels, np.asarray(found.owner), val_frac, test_frac, split_seed)
    images, digests = load_split_images(
        {s: [found.paths[i] for i in idx] for s, idx in assigned.items()},
        folder,
        size,
        channels,
        dtype=dtype,
        kind=found.cache_kind,
        extra=found.cache_extra,
        cache=cache,
        store_dir=store_dir,
    )
    splits = {
        s: Split(images[s], torch.from_numpy(labels[idx]), digests[s])
        for s, idx in assigned.items()
    }
    log.info(
        "Loaded %s at %d px (%s): %d classes, %d train / %d val / %d test images",
        found.source,
        size,
        images["train"].dtype,
        len(found.class_names),
        len(splits["train"]),
        len(splits["val"]),
        len(splits["test"]),
    )
    return DatasetSplits(
        name=name or folder.name,
        task=resolve_task(task, len(found.class_names)),
        class_names=found.class_names,
        intensity=intensity,
        **splits,
    )
