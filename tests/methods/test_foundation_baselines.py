"""`+experiment=foundation_baselines` as a real multirun. Its weights need the hub, so here they
are timm's ResNet-18 randomly initialised and saved (backbone.weights, as offline users run
it), at 32 px instead of 224 to stay small."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import timm
import torch

from tests.conftest import REPO

pytestmark = pytest.mark.integration


def test_foundation_baselines_run_frozen_and_imagenet_initialised_simclr(tmp_path, medmnist_root):
    torch.manual_seed(0)
    weights = tmp_path / "resnet18.pt"
    torch.save(timm.create_model("resnet18", num_classes=0).state_dict(), weights)
    cmd = [sys.executable, str(REPO / "train.py"), "-m", "+experiment=foundation_baselines"]
    cmd += ["method=frozen,simclr", "backbone=resnet18", "label_frac=0.1", "seed=0"]
    cmd += ["backbone.pretrained=false", f"backbone.weights={weights}", "backbone.input.size=32"]
    cmd += ["backbone.small_input=false"]  # ImageNet's stem: 32 px become 8 at once, fast
    cmd += ["trainer.epochs=1", "trainer.batch_size=128", "eval_outputs.figures=false"]
    cmd += ["eval.finetune.epochs=1", "eval.finetune.head_only_epochs=1"]
    cmd += [f"hydra.sweep.dir={tmp_path / 'sweep'}", f"cache.dir={tmp_path / 'encoders'}"]
    env = {**os.environ, "MEDMNIST_ROOT": str(medmnist_root)}
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = {
        path: json.loads(path.read_text()) for path in (tmp_path / "sweep").rglob("results.json")
    }
    assert sorted(r["config/method"] for r in results.values()) == ["frozen", "simclr"]
    for path, result in results.items():
        frozen = result["config/method"] == "frozen"
        assert result["pretrain/epochs"] == (0 if frozen else 1), path
        assert result["config/init"] == "pretrained"
        assert {"test/linear/auroc", "test/knn/auroc", "test/finetune/auroc"} <= result.keys()
