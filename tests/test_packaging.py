"""An installed wheel works outside the source tree: conf/ ships inside the package and the
console scripts find it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.integration


def _run(cmd, cwd, env, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_the_wheel_carries_its_configs_and_its_console_scripts_train(tmp_path, medmnist_root):
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    built = _run(
        [*pip, "wheel", "--no-deps", "-q", "-w", str(tmp_path / "wheel"), str(REPO)], tmp_path, None
    )
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = (tmp_path / "wheel").glob("medssl-*.whl")
    site = tmp_path / "site"  # the wheel alone; torch, hydra, ... come from this environment
    installed = _run(
        [*pip, "install", "--no-deps", "-q", "--target", str(site), str(wheel)], tmp_path, None
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "MEDMNIST_ROOT": str(medmnist_root)}

    where = _run(
        [sys.executable, "-c", "import medssl.configs as c; print(c.config_dir())"], outside, env
    )
    conf = where.stdout.strip()
    assert conf.startswith(str(site)), where.stderr[-2000:]  # the installed copy, not the checkout
    assert os.path.isfile(os.path.join(conf, "method", "simclr.yaml"))

    helped = _run([sys.executable, "-m", "medssl.cli.evaluate", "--help"], outside, env)
    assert helped.returncode == 0 and "method: " in helped.stdout, helped.stderr[-2000:]

    trained = _run(
        [
            str(site / "bin" / "medssl-train"),
            "backbone=smallcnn",
            "trainer.epochs=1",
            "trainer.batch_size=128",
            "cache.enabled=false",
            "eval_outputs.figures=false",
            f"hydra.run.dir={outside / 'run'}",
        ],
        outside,
        env,
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    results = json.loads((outside / "run" / "results.json").read_text())
    assert 0.0 <= results["test/linear/auroc"] <= 1.0
    assert (outside / "run" / "train.log").is_file()
