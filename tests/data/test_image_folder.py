"""Folder datasets (image_folder, csv, unlabelled) on small generated image folders: splits,
decoding, the uint8 cache and its reuse, and the errors that name the bad file."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from medssl.data import image_files
from medssl.data.csv_labels import load_csv_labels
from medssl.data.decode import decode_image
from medssl.data.image_folder import load_image_folder
from medssl.data.image_store import CACHE_DIR
from medssl.data.unlabelled_folder import NO_LABEL, load_unlabelled_folder
from medssl.errors import MedsslError
from tests.conftest import compose_config, write_image
from tests.data.dataset_options import loader_options


def make_folder(root, splits=("train",), classes=("benign", "malignant"), per_class=5):
    values = {}
    for split in splits:
        for c, name in enumerate(classes):
            for i in range(per_class):
                value = 10 * (c * per_class + i) + (100 if split != "train" else 0)
                suffix = ".png" if i % 2 else ".jpg"
                write_image(root / split / name / f"{i}{suffix}", value)
                values[(split, name, i)] = value
    return values


def test_decode_resizes_shorter_side_and_centre_crops(tmp_path):
    image = np.zeros((40, 80, 3), dtype=np.uint8)
    image[:, 20:60] = (255, 0, 0)  # the centre 40 x 40 square is blue in BGR
    cv2.imwrite(str(tmp_path / "wide.png"), image)
    rgb = decode_image(tmp_path / "wide.png", 20, 3, np.uint8)
    assert rgb.shape == (3, 20, 20) and rgb.dtype == np.uint8
    assert (rgb[2] == 255).all() and (rgb[0] == 0).all()  # RGB order, centre crop only
    gray = decode_image(tmp_path / "wide.png", 20, 1, np.uint8)
    assert gray.shape == (1, 20, 20)


def test_image_folder_with_split_ratio(tmp_path):
    make_folder(tmp_path, per_class=10)
    data = load_image_folder(
        str(tmp_path),
        **loader_options(
            "image_folder", size=16, channels=3, val_frac=0.2, test_frac=0.2, split_seed=1
        ),
    )
    assert data.class_names == ["benign", "malignant"] and data.task == "binary"
    assert (len(data.train), len(data.val), len(data.test)) == (12, 4, 4)
    for split in (data.train, data.val, data.test):
        assert split.images.shape[1:] == (3, 16, 16)
        assert sorted(split.labels.tolist()).count(0) == len(split) // 2  # stratified
    assert data.name == tmp_path.name
    again = load_image_folder(
        str(tmp_path),
        **loader_options(
            "image_folder", size=16, channels=3, val_frac=0.2, test_frac=0.2, split_seed=1
        ),
    )
    assert all(
        bool((getattr(again, s).images == getattr(data, s).images).all())
        for s in ("train", "val", "test")
    )


def test_image_folder_with_val_and_test_folders(tmp_path):
    make_folder(tmp_path, splits=("train", "val", "test"), classes=("a", "b", "c"), per_class=2)
    data = load_image_folder(
        str(tmp_path), **loader_options("image_folder", size=8, channels=1, task="ordinal")
    )
    assert (len(data.train), len(data.val), len(data.test)) == (6, 6, 6)
    assert data.task == "ordinal" and data.channels == 1
    # Labels follow the folders: image i of class c encodes 10 * (2c + i) in its red channel.
    expected_gray = [0.299 * (255 - v) + 0.587 * v + 0.114 * v for v in (0, 10, 20, 30, 40, 50)]
    got = data.train.images[:, 0, 4, 4].float()
    assert np.allclose(sorted(got.tolist()), sorted(expected_gray), atol=1.5)
    assert data.train.labels.tolist() == [0, 0, 1, 1, 2, 2]


def _stores(root, kind):
    return sorted((root / CACHE_DIR).glob(f"{kind}-*"))


def test_store_is_written_and_reused_and_equals_decoding_in_memory(tmp_path, monkeypatch):
    make_folder(tmp_path)
    first = load_image_folder(str(tmp_path), **loader_options("image_folder", size=12, channels=3))
    (store,) = _stores(tmp_path, "image_folder-12px-3ch-uint8")
    assert (store / "train.npy").exists() and (store / "manifest.json").exists()
    in_memory = load_image_folder(
        str(tmp_path), **loader_options("image_folder", size=12, channels=3, cache=False)
    )
    for split in ("train", "val", "test"):
        assert torch.equal(getattr(first, split).images, getattr(in_memory, split).images)
        assert torch.equal(getattr(first, split).labels, getattr(in_memory, split).labels)

    def no_decoding(*args, **kwargs):
        raise AssertionError("the second run must open the store")

    monkeypatch.setattr(image_files, "decode_image", no_decoding)
    second = load_image_folder(str(tmp_path), **loader_options("image_folder", size=12, channels=3))
    assert bool((first.train.images == second.train.images).all())
    monkeypatch.undo()
    # A changed file invalidates the cache.
    write_image(tmp_path / "train" / "benign" / "0.jpg", 200)
    third = load_image_folder(str(tmp_path), **loader_options("image_folder", size=12, channels=3))
    assert len(third.train) == len(first.train)
    assert not bool((first.train.images == third.train.images).all())


def test_image_folder_errors_name_the_file(tmp_path):
    make_folder(tmp_path)
    (tmp_path / "train" / "empty").mkdir()
    with pytest.raises(MedsslError, match=r"train/empty holds no images"):
        load_image_folder(str(tmp_path), **loader_options("image_folder", size=8))
    (tmp_path / "train" / "empty").rmdir()
    (tmp_path / "train" / "benign" / "broken.png").write_bytes(b"not an image")
    with pytest.raises(MedsslError, match=r"benign/broken.png could not be read"):
        load_image_folder(str(tmp_path), **loader_options("image_folder", size=8, cache=False))
    with pytest.raises(MedsslError, match="has no train/ folder"):
        load_image_folder(str(tmp_path / "train"), **loader_options("image_folder", size=8))
    with pytest.raises(MedsslError, match="is not a folder"):
        load_image_folder(str(tmp_path / "missing"), **loader_options("image_folder", size=8))


def test_csv_dataset_labels_and_split_column(tmp_path):
    rows = ["filename,label,split"]
    for i in range(12):
        write_image(tmp_path / "img" / f"{i}.png", 20 * i)
        rows.append(f"img/{i}.png,{i % 3 * 2},{'test' if i >= 9 else 'train'}")
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    data = load_csv_labels(
        str(tmp_path), **loader_options("csv", size=8, channels=3, val_frac=0.34, test_frac=0.0)
    )
    assert data.class_names == ["0", "2", "4"] and data.task == "multiclass"
    assert len(data.test) == 3 and len(data.train) + len(data.val) == 9 and len(data.val) == 3
    # Each image's label is recoverable from its pixel value (20 * i, blue channel = value).
    for split in (data.train, data.val, data.test):
        i = (split.images[:, 2, 0, 0].long() // 20).tolist()
        assert split.labels.tolist() == [k % 3 for k in i]
    assert _stores(tmp_path, "csv-labels-8px-3ch-uint8")


def test_csv_errors_name_the_file_and_line(tmp_path):
    write_image(tmp_path / "a.png", 10)
    write_image(tmp_path / "b.png", 20)
    (tmp_path / "labels.csv").write_text("filename,label\na.png,normal\nb.png,tumour\n")
    with pytest.raises(MedsslError, match=r"labels.csv, line 3: b.png has the label 'tumour'"):
        load_csv_labels(
            str(tmp_path), **loader_options("csv", size=8, classes=["normal", "abnormal"])
        )
    (tmp_path / "labels.csv").write_text("filename,label\na.png,normal\nc.png,normal\n")
    with pytest.raises(MedsslError, match=r"line 3: the image .*c.png does not exist"):
        load_csv_labels(str(tmp_path), **loader_options("csv", size=8))
    (tmp_path / "labels.csv").write_text("name,class\na.png,normal\n")
    with pytest.raises(
        MedsslError, match="must start with a header naming the columns filename,label"
    ):
        load_csv_labels(str(tmp_path), **loader_options("csv", size=8))
    (tmp_path / "b.png").write_bytes(b"\x89PNG broken")
    (tmp_path / "labels.csv").write_text("filename,label\na.png,x\nb.png,y\n")
    with pytest.raises(MedsslError, match=r"b.png could not be read"):
        load_csv_labels(str(tmp_path), **loader_options("csv", size=8))


def test_unlabelled_folder_recursive_and_cached(tmp_path):
    for i in range(5):
        write_image(tmp_path / f"batch{i % 2}" / f"{i}.jpg", 30 * i)
    (tmp_path / "notes.txt").write_text("not an image")
    data = load_unlabelled_folder(
        str(tmp_path), **loader_options("unlabelled_folder", size=10, channels=1)
    )
    assert data.train.images.shape == (5, 1, 10, 10) and (data.train.labels == NO_LABEL).all()
    assert _stores(tmp_path, "unlabelled-10px-1ch-uint8")
    again = load_unlabelled_folder(
        str(tmp_path), **loader_options("unlabelled_folder", size=10, channels=1)
    )  # the cache is not an image
    assert len(again.train) == 5
    (tmp_path / "empty").mkdir()
    with pytest.raises(MedsslError, match="empty holds no images"):
        load_unlabelled_folder(
            str(tmp_path / "empty"), **loader_options("unlabelled_folder", size=10)
        )


@pytest.mark.parametrize("group", ["image_folder", "csv", "unlabelled_folder"])
def test_configs_compose_and_instantiate(group, tmp_path):
    make_folder(tmp_path, per_class=5)
    rows = ["filename,label"] + [
        f"train/benign/{i}.{'png' if i % 2 else 'jpg'},benign" for i in range(5)
    ]
    rows += [f"train/malignant/{i}.{'png' if i % 2 else 'jpg'},malignant" for i in range(5)]
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    cfg = compose_config([f"dataset={group}", f"dataset.root={tmp_path}", "dataset.size=8"])
    data = instantiate(cfg.dataset)
    assert data.train.images.shape[1:] == (3, 8, 8)
