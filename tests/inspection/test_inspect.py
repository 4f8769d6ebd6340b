"""`python -m medssl.cli.inspect`: counts equal to the files' own labels, image statistics, exact
duplicates, and readable PNGs, for MedMNIST (genuine BreastMNIST; a generated multi-label
ChestMNIST file), image folders, CSV-labelled folders and unlabelled folders."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir

from medssl.cli.inspect import inspect_dataset
from medssl.data.splits import Split
from medssl.errors import MedsslError
from medssl.inspection.duplicates import find_duplicates
from medssl.inspection.groups import NO_POSITIVE, groups_of
from medssl.inspection.image_stats import intensity_histograms
from tests.conftest import CONF, write_fake_medmnist, write_image

PNGS = ("class_counts.png", "samples.png", "intensity.png")
SPLITS = ("train", "val", "test")


def inspect(tmp_path, overrides: list[str]) -> dict:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="inspect", overrides=[f"out={tmp_path / 'out'}", *overrides])
    return inspect_dataset(cfg)


def assert_readable_pngs(folder) -> None:
    for name in PNGS:
        image = cv2.imread(str(folder / name))
        assert image is not None and min(image.shape[:2]) > 100, name
        assert image.std() > 10, name  # something is drawn


def test_counts_stats_and_duplicates_match_the_breastmnist_file(tmp_path, medmnist_root):
    result = inspect(tmp_path, ["dataset=breastmnist"])
    npz = np.load(medmnist_root / "breastmnist.npz")
    names = result["names"]
    assert names == ["malignant", "normal, benign"]
    for split in SPLITS:
        labels, images = npz[f"{split}_labels"][:, 0], npz[f"{split}_images"]
        expected = np.bincount(labels, minlength=2)
        assert [result["counts"][split][n] for n in names] == expected.tolist()
        assert result["imbalance_ratio"][split] == pytest.approx(expected.max() / expected.min())
        stats = result["images"][split]
        assert (stats["n"], stats["shape"], stats["dtype"]) == (len(images), [1, 28, 28], "uint8")
        assert (stats["min"], stats["max"]) == (images.min(), images.max())
        assert stats["mean"] == pytest.approx(images.mean(), rel=1e-6)
    # Duplicates found without hashing: every test image against every training image.
    train, test = npz["train_images"].reshape(546, -1), npz["test_images"].reshape(156, -1)
    same = (train[:, None, :] == test[None, :, :]).all(-1)
    pair = next(d for d in result["duplicates"] if d["splits"] == ["train", "test"])
    assert pair["images"] == int(same.any(0).sum()) >= 1
    i, j = pair["examples"][0]
    assert same[i, j] and pair["label_conflicts"] == sum(
        npz["train_labels"][a, 0] != npz["test_labels"][b, 0] for a, b in zip(*same.nonzero())
    )
    out = tmp_path / "out"
    report = (out / "inspect.md").read_text()
    malignant = result["counts"]["train"]["malignant"]
    assert f"| malignant | {malignant} ({100 * malignant / 546:.1f} %) |" in report
    assert f"train[{i}] = test[{j}]" in report and "![" in report
    assert json.loads((out / "inspect.json").read_text()) == json.loads(json.dumps(result))
    assert_readable_pngs(out)


def test_multilabel_counts_positives_per_label_and_images_with_none(tmp_path):
    path = write_fake_medmnist(tmp_path / "medmnist", "chestmnist", n=24, seed=3)
    npz = np.load(path)
    npz_labels = {s: npz[f"{s}_labels"].copy() for s in SPLITS}
    npz_labels["val"][:5] = 0  # images with no finding
    np.savez(
        path,
        **{k: npz[k] for k in npz.files if "labels" not in k},
        **{f"{s}_labels": v for s, v in npz_labels.items()},
    )
    result = inspect(
        tmp_path,
        ["dataset=chestmnist", f"dataset.root={tmp_path / 'medmnist'}", "dataset.download=false"],
    )
    assert result["groups"] == "label" and len(result["names"]) == 15
    for split, labels in npz_labels.items():
        counts = result["counts"][split]
        assert [counts[n] for n in result["names"][:14]] == labels.sum(0).tolist()
        assert counts[NO_POSITIVE] == int((labels.sum(1) == 0).sum())
        positives = labels.sum(0)
        assert result["imbalance_ratio"][split] == pytest.approx(positives.max() / positives.min())
    assert result["counts"]["val"][NO_POSITIVE] >= 5
    assert "prevalence" in (tmp_path / "out" / "inspect.md").read_text()
    assert_readable_pngs(tmp_path / "out")


def folder_images(root, layout: dict[str, dict[str, int]]) -> None:
    """`layout[split][class]` images, each of its own colour; a copy of the first training
    image of the first class goes into test under another name."""
    k = 0
    for split, classes in layout.items():
        for name, n in classes.items():
            for i in range(n):
                write_image(root / split / name / f"{i}.png", 9 * k + 3)
                k += 1
    first_class = next(iter(layout["train"]))
    shutil.copy(root / "train" / first_class / "0.png", root / "test" / first_class / "copy.png")


LAYOUT = {"train": {"a": 6, "b": 3}, "val": {"a": 2, "b": 2}, "test": {"a": 2, "b": 1}}


@pytest.mark.parametrize("kind", ["image_folder", "csv"])
def test_folder_datasets_count_their_files_and_find_the_copy(kind, tmp_path):
    root = tmp_path / "images"
    folder_images(root, LAYOUT)
    if kind == "csv":
        rows = ["filename,label,split"] + [
            f"{p.relative_to(root)},{p.parent.name},{p.parts[-3]}"
            for p in sorted(root.rglob("*.png"))
        ]
        (root / "labels.csv").write_text("\n".join(rows) + "\n")
    result = inspect(tmp_path, [f"dataset={kind}", f"dataset.root={root}", "dataset.size=16"])
    expected = {s: dict(c) for s, c in LAYOUT.items()}
    expected["test"]["a"] += 1  # the copy
    assert {s: result["counts"][s] for s in SPLITS} == expected
    assert result["imbalance_ratio"]["train"] == pytest.approx(2.0)
    pairs = {tuple(d["splits"]): d for d in result["duplicates"]}
    assert (
        pairs[("train", "test")]["images"] == 1 and pairs[("train", "test")]["label_conflicts"] == 0
    )
    assert sum(d["images"] for d in result["duplicates"]) == 1
    assert result["images"]["train"]["shape"] == [3, 16, 16]
    assert_readable_pngs(tmp_path / "out")


def test_unlabelled_folder_is_one_group(tmp_path):
    for i in range(5):
        write_image(tmp_path / "images" / f"{i}.jpg", 40 * i)
    shutil.copy(tmp_path / "images" / "0.jpg", tmp_path / "images" / "again.jpg")  # sorted last
    result = inspect(tmp_path, ["dataset=unlabelled_folder", f"dataset.root={tmp_path / 'images'}"])
    assert result["groups"] == "unlabelled" and list(result["images"]) == ["train"]
    assert result["counts"]["train"] == {result["names"][0]: 6}
    assert result["duplicates"] == [
        {"splits": ["train", "train"], "images": 1, "label_conflicts": 0, "examples": [[0, 5]]}
    ]
    assert_readable_pngs(tmp_path / "out")


def test_duplicates_within_and_across_splits_with_label_conflicts():
    g = torch.Generator().manual_seed(0)
    a = torch.randint(0, 256, (6, 1, 4, 4), generator=g, dtype=torch.uint8)
    b = torch.randint(0, 256, (4, 1, 4, 4), generator=g, dtype=torch.uint8)
    b[1], b[3] = a[2], a[2]  # two copies of one training image, one with another label
    a[5] = a[0]  # a copy inside train
    near = a[4].clone()
    near[0, 0, 0] ^= 1  # one bit off is not a duplicate
    b[0] = near
    splits = {
        "train": Split(a, torch.tensor([0, 1, 0, 1, 0, 1])),
        "test": Split(b, torch.tensor([1, 1, 0, 0])),
    }
    pairs = {(p.first, p.second): p for p in find_duplicates(splits, max_examples=1)}
    assert (pairs["train", "train"].images, pairs["train", "train"].examples) == (1, [(0, 5)])
    assert pairs["train", "train"].label_conflicts == 1
    assert (pairs["train", "test"].images, pairs["train", "test"].label_conflicts) == (2, 1)
    assert pairs["train", "test"].examples == [(2, 1)]
    assert pairs["test", "test"].images == 1  # b[3] repeats b[1]


def test_intensity_histograms_are_fractions_per_channel_and_group():
    images = torch.zeros(3, 2, 4, 4, dtype=torch.uint8)
    images[0] = 10
    images[1, 0], images[1, 1] = 200, 30
    images[2] = 10
    masks = torch.tensor([[True, False, True], [False, True, False], [False, False, False]])
    hist = intensity_histograms(images, masks)
    assert hist.shape == (3, 2, 256)
    assert hist[0, :, 10].tolist() == [1.0, 1.0]
    assert (hist[1, 0, 200], hist[1, 1, 30]) == (1.0, 1.0)
    assert hist[2].sum() == 0  # an empty group draws nothing


def test_an_empty_class_has_no_finite_imbalance(tmp_path):
    from medssl.data.splits import DatasetSplits

    split = Split(torch.zeros(4, 1, 8, 8, dtype=torch.uint8), torch.tensor([0, 0, 1, 1]))
    empty = Split(torch.zeros(2, 1, 8, 8, dtype=torch.uint8), torch.tensor([0, 0]))
    data = DatasetSplits("toy", "binary", ["x", "y"], split, empty, split)
    groups = groups_of(data)
    assert groups.imbalance(groups.counts("val")) is None
    assert groups.imbalance(groups.counts("train")) == 1.0


def test_bad_dataset_input_is_one_sentence(tmp_path):
    with pytest.raises(MedsslError, match="is not a folder"):
        inspect(tmp_path, ["dataset=image_folder", f"dataset.root={tmp_path / 'missing'}"])


@pytest.mark.integration
@pytest.mark.slow
def test_cli_writes_into_hydras_run_folder_and_reports_bad_input_in_one_sentence(
    tmp_path, medmnist_root
):
    def cli(*args):
        return subprocess.run(
            [sys.executable, "-m", "medssl.cli.inspect", *args],
            cwd=tmp_path,
            env={**os.environ, "MEDMNIST_ROOT": str(medmnist_root)},
            capture_output=True,
            text=True,
            timeout=120,
        )

    # Without out=, the files go to Hydra's run folder.
    proc = cli("dataset=breastmnist", f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "run" / "inspect.md").read_text().startswith("# Dataset inspection")
    assert_readable_pngs(tmp_path / "run")
    proc = cli("dataset=image_folder", f"dataset.root={tmp_path / 'missing'}")
    assert proc.returncode == 1 and "is not a folder" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
