"""The code that pretrains, and the content of a weights file, key the encoder cache: an edit to
a loss's source makes the next run pretrain again; moving a weights file does not."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from medssl.evaluation.feature_cache import FEATURES
from medssl.study.code_version import PACKAGE, code_version, source_digest, weights_digest
from tests.conftest import run_train, write_fake_medmnist

TINY = [
    "backbone=smallcnn",
    "trainer.epochs=1",
    "trainer.batch_size=16",
    "eval_outputs.figures=false",
    "trainer.online_probe=false",
]


def _package_copy(where: Path) -> Path:
    """medssl's source (its conf/ link followed) under `where`, importable from there."""
    shutil.copytree(
        PACKAGE, where / "medssl", symlinks=False, ignore=shutil.ignore_patterns("__pycache__")
    )
    return where / "medssl"


def test_the_source_digest_follows_pretraining_code_only(tmp_path):
    package = _package_copy(tmp_path)
    before = source_digest(package)
    assert before == source_digest(PACKAGE)  # the copy is the same code
    with open(package / "study" / "report" / "html.py", "a") as file:
        file.write("# the report's look shapes no encoder\n")
    assert source_digest.__wrapped__(package) == before
    with open(package / "losses" / "nt_xent.py", "a") as file:
        file.write("# an edited loss\n")
    assert source_digest.__wrapped__(package) != before
    assert set(code_version()) == {"source", "torch", "timm"}


def test_a_weights_file_is_keyed_by_content_not_path(tmp_path):
    first, moved = tmp_path / "a.pt", tmp_path / "elsewhere" / "b.pt"
    torch.save({"w": torch.ones(3)}, first)
    moved.parent.mkdir()
    shutil.copyfile(first, moved)
    assert weights_digest(str(first)) == weights_digest(str(moved))
    torch.save({"w": torch.zeros(3)}, first)
    os.utime(first, ns=(1, 1))  # new content, whatever the clock says
    assert weights_digest(str(first)) != weights_digest(str(moved))


@pytest.mark.integration
def test_editing_a_loss_makes_the_next_run_pretrain_again(tmp_path):
    """Three real runs of train.py on a copy of the package sharing one encoder cache: the
    second reuses the first's encoder; after an edit to the loss the third pretrains anew."""
    package = _package_copy(tmp_path / "src")
    data = tmp_path / "data"
    write_fake_medmnist(data, "breastmnist", n=24)
    args = [*TINY, f"dataset.root={data}", f"cache.dir={tmp_path / 'encoders'}"]
    env = {"PYTHONPATH": str(tmp_path / "src"), "MEDSSL_STORE_DIR": str(tmp_path / "stores")}

    def train(name: str) -> dict:
        proc = run_train(args, tmp_path / name, env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return json.loads((tmp_path / name / "run" / "results.json").read_text())

    for name in ("first", "second", "third"):
        (tmp_path / name).mkdir()
    first = train("first")
    second = train("second")
    with open(package / "losses" / "nt_xent.py", "a") as file:
        file.write("# an edited loss\n")
    third = train("third")
    assert not first["pretrain/reused"] and second["pretrain/reused"]
    assert not third["pretrain/reused"]
    keys = {r["pretrain/cache_key"] for r in (first, second, third)}
    encoders = [p for p in (tmp_path / "encoders").iterdir() if p.name != FEATURES]
    assert len(keys) == 2 and len(encoders) == 2
