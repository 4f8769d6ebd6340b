"""The command line's hints, through the real train.py and medssl.cli.evaluate in a new process:
an analysis spelled as before it moved to `eval.analyses` is answered with one sentence naming
the new key, exit status 1, no traceback and nothing written (Hydra never starts).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import medssl.cli.train  # noqa: F401  registers the `train` config
from medssl.override_hints import override_hint

TRAIN_PY = Path(__file__).resolve().parents[1] / "train.py"


def _command_line(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *command], cwd=cwd, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    "old,section,new",
    [
        ("eval.robustness.enabled=true", "eval.analyses", "eval.analyses.robustness.enabled=true"),
        (
            "eval/shift_dataset=pneumoniamnist",
            "eval/analyses",
            "eval/analyses/shift_dataset=pneumoniamnist",
        ),
        ("eval.mc_dropout.samples=20", "eval.analyses", "eval.analyses.mc_dropout.samples=20"),
    ],
)
@pytest.mark.integration  # the real CLI in a subprocess
def test_train_py_names_the_new_key_of_an_old_spelling(old, section, new, tmp_path):
    done = _command_line([str(TRAIN_PY), "backbone=smallcnn", old], cwd=tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "Traceback" not in output and "HYDRA_FULL_ERROR" not in output
    assert output.strip().splitlines() == [
        f"{old}: the analyses have their own section now, {section}; use {new}"
    ]
    assert list(tmp_path.iterdir()) == []  # no run folder, no log: Hydra never started


@pytest.mark.integration  # the real CLI in a subprocess
def test_evaluate_names_the_new_key_of_an_old_spelling(tmp_path):
    done = _command_line(
        ["-m", "medssl.cli.evaluate", "ckpt=encoder.pt", "eval.mc_dropout.samples=20"],
        cwd=tmp_path,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "Traceback" not in output
    assert output.strip() == (
        "eval.mc_dropout.samples=20: the analyses have their own section now, eval.analyses; "
        "use eval.analyses.mc_dropout.samples=20"
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "args",
    [
        ["eval.analyses.robustness.enabled=true"],
        ["eval/analyses/shift_dataset=pneumoniamnist", "eval.analyses.shift_dataset.size=64"],
        ["eval=[linear,finetune]", "eval.finetune.epochs=3", "eval.analyses.mc_dropout.samples=5"],
    ],
)
def test_the_new_spellings_pass_on_to_hydra(args):
    assert override_hint(args, "train") is None


def test_an_unselected_protocol_still_names_the_eval_list_that_selects_it():
    hint = override_hint(["eval=[linear,knn]", "eval.finetune.epochs=3"], "train")
    assert hint == (
        "eval.finetune.epochs=3 sets the finetune protocol, which is not selected "
        "(eval=[linear,knn]); select it too: 'eval=[linear,knn,finetune]' eval.finetune.epochs=3"
    )
