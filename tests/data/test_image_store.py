"""The on-disk image store: bit-identical to decoding into memory, memory-mapped (opening and
reading it holds no anonymous memory), atomic (a killed build is rebuilt, never used), and
refused in one sentence when the disk cannot hold it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from medssl.data import image_store
from medssl.data.image_store import StoreSpec, array_digest, stored_splits
from medssl.data.medmnist_source import load_medmnist
from medssl.errors import MedsslError
from tests.conftest import REPO, write_fake_medmnist


def _rss_anon_mib() -> float:
    with open("/proc/self/status") as handle:
        line = next(x for x in handle if x.startswith("RssAnon:"))
    return int(line.split()[1]) / 1024


def _pattern(split: str, out: np.ndarray, start: int) -> None:
    offset = {"train": 0, "val": 7, "test": 13}[split]
    out[:] = ((np.arange(len(out)) + start + offset) % 251).astype(out.dtype)[:, None, None, None]


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_store_holds_what_was_written_with_its_digest(tmp_path, dtype):
    spec = StoreSpec({"train": 9, "val": 3, "test": 2}, 1, 5, np.dtype(dtype))
    images, digests = stored_splits(tmp_path, "toy", "k" * 64, spec, "toy source", _pattern)
    for split, count in spec.counts.items():
        expected = np.empty((count, 1, 5, 5), dtype=dtype)
        _pattern(split, expected, 0)
        assert images[split].dtype == (torch.uint8 if dtype == np.uint8 else torch.uint16)
        assert np.array_equal(images[split].numpy(), expected)
        assert digests[split] == array_digest(expected)  # what the encoder cache keys on


def test_medmnist_store_equals_the_npz_and_is_converted_once(tmp_path, medmnist_root):
    data = load_medmnist(
        "breastmnist",
        28,
        str(medmnist_root),
        download=False,
        positive_class=0,
        references=[],
        store_dir=str(tmp_path),
    )
    with np.load(medmnist_root / "breastmnist.npz") as npz:
        for split in ("train", "val", "test"):
            stored = getattr(data, split)
            assert np.array_equal(stored.images.numpy()[:, 0], npz[f"{split}_images"])
            assert np.array_equal(stored.labels.numpy(), npz[f"{split}_labels"][:, 0])
    (store,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    before = (store / "train.npy").stat().st_mtime_ns
    load_medmnist(
        "breastmnist",
        28,
        str(medmnist_root),
        download=False,
        positive_class=0,
        references=[],
        store_dir=str(tmp_path),
    )
    assert (store / "train.npy").stat().st_mtime_ns == before  # opened, not rebuilt


def test_colour_medmnist_store_is_channels_first(tmp_path):
    path = write_fake_medmnist(tmp_path / "mm", "dermamnist", n=10)
    data = load_medmnist(
        "dermamnist",
        28,
        str(tmp_path / "mm"),
        download=False,
        positive_class=None,
        references=[],
        store_dir=None,
    )
    with np.load(path) as npz:
        assert np.array_equal(data.train.images.numpy(), npz["train_images"].transpose(0, 3, 1, 2))
    assert (tmp_path / "mm" / ".medssl-cache").is_dir()  # store_dir null: beside the data


def test_opening_and_reading_a_store_holds_no_anonymous_memory(tmp_path):
    spec = StoreSpec({"train": 3200, "val": 1, "test": 1}, 1, 128, np.dtype(np.uint8))  # 52 MB
    stored_splits(tmp_path, "big", "b" * 64, spec, "big", _pattern)
    start = _rss_anon_mib()
    images, _ = stored_splits(tmp_path, "big", "b" * 64, spec, "big", _pattern)
    total = sum(int(images["train"][i : i + 256].sum()) for i in range(0, 3200, 256))
    assert total > 0
    assert _rss_anon_mib() - start < 20  # a chunk at most, not the 52 MB store


def test_an_outdated_or_torn_store_is_rebuilt(tmp_path):
    spec = StoreSpec({"train": 4, "val": 1, "test": 1}, 1, 3, np.dtype(np.uint8))
    images, _ = stored_splits(tmp_path, "s", "a" * 64, spec, "src", _pattern)
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    (folder / "manifest.json").write_text("{torn")
    calls = []

    def fill(split, out, start):
        calls.append(split)
        out[:] = 200

    images, _ = stored_splits(tmp_path, "s", "a" * 64, spec, "src", fill)
    assert calls and int(images["train"].min()) == 200


KILLED_BUILD = """
import sys, time
import numpy as np
from medssl.data.image_store import StoreSpec, array_digest, stored_splits
spec = StoreSpec({"train": 64, "val": 1, "test": 1}, 1, 4, np.dtype(np.uint8))
def fill(split, out, start):
    print("filling", flush=True)
    time.sleep(60)
stored_splits(sys.argv[1], "s", "c" * 64, spec, "src", fill)
"""


def test_a_killed_build_is_never_taken_for_a_finished_one(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_BUILD, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert proc.stdout.readline().strip() == "filling"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    leftovers = [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name]
    assert leftovers and not any(p.is_dir() and ".tmp-" not in p.name for p in tmp_path.iterdir())
    spec = StoreSpec({"train": 64, "val": 1, "test": 1}, 1, 4, np.dtype(np.uint8))
    images, _ = stored_splits(tmp_path, "s", "c" * 64, spec, "src", _pattern)
    expected = np.empty((64, 1, 4, 4), np.uint8)
    _pattern("train", expected, 0)
    assert np.array_equal(images["train"].numpy(), expected)
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]  # the dead build's files go


def test_a_store_that_does_not_fit_on_the_disk_is_refused_before_building(tmp_path, monkeypatch):
    free = 10 * 2**20
    monkeypatch.setattr(
        image_store.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(0, 0, free)
    )
    spec = StoreSpec({"train": 1000, "val": 1, "test": 1}, 3, 224, np.dtype(np.uint8))
    started = time.perf_counter()
    with pytest.raises(MedsslError, match=r"needs 0\.17 GB in .* but only 10\.5 MB is free"):
        stored_splits(tmp_path, "s", "d" * 64, spec, "my archive", _pattern)
    assert time.perf_counter() - started < 5
    assert not [p for p in tmp_path.iterdir() if p.is_dir()]


def test_unwritable_store_dir_is_one_sentence(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(MedsslError, match="set dataset.store_dir to a writable folder"):
        image_store.writable_store_dir(blocker / "sub", tmp_path, "x")


def test_read_only_data_falls_back_to_the_user_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    blocker = tmp_path / "data"
    blocker.write_text("")  # a data root where no .medssl-cache can be made
    assert image_store.writable_store_dir(None, blocker, "x") == Path(
        tmp_path / "cache" / "medssl" / "stores"
    )
