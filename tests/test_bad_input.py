"""Bad input to a run: one sentence, exit status 1, and nothing already written lost.

Each case composes the real config and goes through `study.job.run_job`, the function
`train.py`'s main calls, in this process: a new interpreter per case would cost 10 s of imports
(tests/test_train_end_to_end.py covers the subprocess path itself)."""

from __future__ import annotations

import logging

import pytest
from hydra.errors import ConfigCompositionException

from medssl.run import run
from medssl.study.job import run_job
from tests.conftest import compose_config

TINY = ["backbone=smallcnn", "trainer.epochs=1", "trainer.batch_size=128", "cache.enabled=false"]


@pytest.fixture(autouse=True)
def _genuine_medmnist(monkeypatch, medmnist_root):
    monkeypatch.setenv("MEDMNIST_ROOT", str(medmnist_root))


def _refused(run_dir, overrides: list[str], caplog) -> str:
    """The one sentence a single run exits with (status 1)."""
    cfg = compose_config([*TINY, *overrides])
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="medssl"), pytest.raises(SystemExit) as exit_:
        run_job(run, cfg, run_dir)
    assert exit_.value.code == 1
    return caplog.records[0].getMessage()


@pytest.mark.parametrize(
    "overrides, sentence",
    [
        (["trainer.epochs=0"], "trainer.epochs must be at least 1, got 0."),
        (["trainer.epochs=-2"], "trainer.epochs must be at least 1, got -2."),
        (
            ["trainer.precision=fp16"],
            "precision=fp16 needs a CUDA device; use bf16 or fp32 on CPU.",
        ),
        (["trainer.device=cuda"], "no CUDA device is visible; use device=auto or cpu."),
        (
            ["trainer.batch_size=1000"],  # BreastMNIST has 546 training images
            "trainer.batch_size=1000 is larger than the 546 pretraining images; "
            "use trainer.batch_size=546 or less.",
        ),
    ],
)
def test_a_budget_or_device_that_cannot_train_is_refused(tmp_path, caplog, overrides, sentence):
    message = _refused(tmp_path / "run", overrides, caplog)
    assert sentence in message and "\n" not in message
    assert not (tmp_path / "run" / "results.json").exists()


def test_an_unknown_key_fails_at_composition_with_hydra_s_message():
    with pytest.raises(ConfigCompositionException, match="Could not override 'seeed'"):
        compose_config(["seeed=3"])
    with pytest.raises(ConfigCompositionException, match="Could not override 'trainer.epoch'"):
        compose_config(["trainer.epoch=3"])


def test_a_checkpoint_of_another_config_or_a_torn_one_is_refused_and_kept(tmp_path, caplog):
    run_dir = tmp_path / "run"
    run_job(run, compose_config(TINY), run_dir)
    checkpoint = run_dir / "checkpoints" / "last.pt"
    results = (run_dir / "results.json").read_bytes()
    saved = checkpoint.read_bytes()

    # The same folder with another temperature: the checkpoint names the key that differs.
    message = _refused(run_dir, ["method.loss.temperature=0.5"], caplog)
    assert f"{checkpoint} was written by a run with different method.loss.temperature;" in message
    assert checkpoint.read_bytes() == saved and (run_dir / "results.json").read_bytes() == results

    # A torn write (a node that died while copying it): refused by name, not overwritten.
    checkpoint.write_bytes(saved[: len(saved) // 2])
    message = _refused(run_dir, ["skip_done=false"], caplog)
    assert f"cannot read checkpoint {checkpoint}" in message
    assert checkpoint.read_bytes() == saved[: len(saved) // 2]
