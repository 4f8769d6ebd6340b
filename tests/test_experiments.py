"""Every experiment file runs as a real Hydra multirun, shrunk to a tiny budget."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from omegaconf import OmegaConf

from tests.conftest import CONF, REPO

pytestmark = pytest.mark.integration

# `smoke` runs whole, through every launcher, in tests/test_study.py; `hparam_search` (an Optuna
# search, not a grid) in tests/cli/test_optuna_search.py; `foundation_baselines` (its weights
# need the hub) with local weights in tests/test_foundation_baselines.py.
ON_THEIR_OWN = ("smoke", "hparam_search", "foundation_baselines")
EXPERIMENTS = sorted(
    p.stem for p in (CONF / "experiment").glob("*.yaml") if p.stem not in ON_THEIR_OWN
)
# No figures: what is checked is the sweep and its keys (tests/evaluation draws the figures).
TINY = [
    "backbone=smallcnn",
    "trainer.epochs=1",
    "trainer.batch_size=128",
    "eval_outputs.figures=false",
]


def swept_params(name: str) -> dict[str, list[str]]:
    params = OmegaConf.load(CONF / "experiment" / f"{name}.yaml").hydra.sweeper.params
    return {key: str(value).split(",") for key, value in params.items()}


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_runs_as_a_multirun(name, tmp_path, medmnist_root):
    params = swept_params(name)
    # Keep the first value of every swept key but two of the first key: two jobs, real sweep.
    first_key = next(iter(params))
    shrunk = [f"{k}={','.join(v[:2]) if k == first_key else v[0]}" for k, v in params.items()]
    cmd = [
        sys.executable,
        str(REPO / "train.py"),
        "-m",
        f"+experiment={name}",
        *shrunk,
        *TINY,
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
    ]
    env = {**os.environ, "MEDMNIST_ROOT": str(medmnist_root)}
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = sorted((tmp_path / "sweep").glob("*/results.json"))
    assert len(results) == min(2, len(params[first_key]))  # one folder per job
    for path in results:
        assert f"{first_key}=" in path.parent.name  # folders are named by their overrides
        assert "test/linear/auroc" in json.loads(path.read_text())
