"""Pretraining-length curves: `trainer.eval_every` scores the encoder with k-NN and a linear
probe into train_log.jsonl and figures/pretraining_curve.png without changing what trains;
`trainer.keep_epochs` keeps encoders that `medssl.cli.evaluate` scores; neither enters the cache key."""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest
import torch

from medssl.augment.pipeline import ViewPipeline
from medssl.cli.evaluate import evaluate_checkpoint
from medssl.errors import MedsslError
from medssl.evaluation.calibration import probs_to_logits
from medssl.evaluation.knn import KNNClassifier
from medssl.evaluation.linear_probe import LinearProbe
from medssl.evaluation.metrics import ranking_auroc
from medssl.losses.nt_xent import NTXentLoss
from medssl.methods.simclr import SimCLR
from medssl.models.small_cnn import SmallCNN
from medssl.run import run
from medssl.training.features import extract_features
from medssl.training.optim import build_optimizer, build_scheduler
from medssl.training.pretrain import pretrain
from medssl.training.pretrain_settings import PretrainSettings
from medssl.training.pretraining_curve import PretrainingCurve
from tests.conftest import (
    TINY,
    compose_config,
    compose_evaluate,
    key_of,
    plain_crop,
    write_fake_medmnist,
)

N = 32


def _images(seed, n):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 1, 16, 16), dtype=torch.uint8, generator=g)


def _curve() -> PretrainingCurve:
    labelled = torch.arange(0, N, 2)  # half the pretraining images keep their labels
    return PretrainingCurve(
        probes={
            "knn": KNNClassifier(k=5, temperature=0.07),
            "linear": LinearProbe(
                Cs=(0.1, 1.0), max_iter=1000, class_weight="balanced", link="softmax"
            ),
        },
        train_images=_images(1, N)[labelled],
        train_labels=labelled % 4 // 2,
        val_images=_images(2, 24),
        val_labels=torch.arange(24) % 2,
        task="binary",
        num_classes=2,
    )


def _train(run_dir, *, epochs=3, eval_every=None, die_at=None):
    torch.manual_seed(0)
    method = SimCLR(
        SmallCNN(in_chans=1, width=8, name="smallcnn", input_size=16),
        NTXentLoss(temperature=0.2, gather=True),
        proj_hidden_dim=16,
        proj_dim=8,
    )
    if die_at is not None:
        steps, original = {"n": 0}, method.on_step_end

        def on_step_end(progress):
            original(progress)
            steps["n"] += 1
            if steps["n"] == die_at:
                raise KeyboardInterrupt  # killed mid-epoch

        method.on_step_end = on_step_end
    history = pretrain(
        method,
        ViewPipeline(n_views=2, cpu_threads=None, crop=plain_crop(hflip_p=0.5, p=1.0)),
        _images(1, N),
        None,
        PretrainSettings(
            epochs=epochs,
            batch_size=16,
            precision="fp32",
            seed=0,
            accumulate_steps=1,
            collapse_min_std=0.01,
            collapse_min_rank=2.0,
            eval_every=eval_every,
            keep_epochs=(),
            checkpoint_every=None,
        ),
        optimizer_factory=functools.partial(
            build_optimizer,
            name="adamw",
            base_lr=1e-2,
            ref_batch_size=256,
            weight_decay=1e-4,
            momentum=0.9,
        ),
        scheduler_factory=functools.partial(
            build_scheduler, warmup_epochs=0.5, min_lr_ratio=0.0, warmup_lr_ratio=0.0
        ),
        device=torch.device("cpu"),
        run_dir=run_dir,
        fingerprint="curve",
        curve=_curve() if eval_every is not None else None,
    )
    return method, history


def test_curve_rows_score_the_encoder_of_their_epoch_and_change_no_weight(tmp_path):
    plain, plain_history = _train(tmp_path / "plain")
    scored, history = _train(tmp_path / "scored", eval_every=2)
    for name, value in plain.state_dict().items():  # the same random numbers and BatchNorm
        assert torch.equal(value, scored.state_dict()[name]), name
    assert [r["loss"] for r in history] == [r["loss"] for r in plain_history]
    # Every second epoch, and the last.
    assert [("eval/knn/auroc" in r) for r in history] == [False, True, True]
    rows = [json.loads(line) for line in (tmp_path / "scored" / "train_log.jsonl").open()]
    assert rows[2]["eval/linear/auroc"] == history[2]["eval/linear/auroc"]
    assert 0 <= rows[2]["eval/linear/acc"] <= 1 and 0 <= rows[2]["eval/knn/balanced_acc"] <= 1
    # The last row is the final encoder's k-NN, computed here without the curve.
    curve = _curve()
    bank = extract_features(scored.encoder, curve.images["train"], device=torch.device("cpu"))
    val = extract_features(scored.encoder, curve.images["val"], device=torch.device("cpu"))
    probs = KNNClassifier(k=5, temperature=0.07).predict_proba(
        "binary", 2, bank.numpy(), curve.labels["train"], val.numpy()
    )
    expected = ranking_auroc("binary", curve.labels["val"], probs, probs_to_logits("binary", probs))
    assert history[2]["eval/knn/auroc"] == pytest.approx(expected, abs=1e-12)
    assert (tmp_path / "scored" / "figures" / "pretraining_curve.png").stat().st_size > 5000
    assert not (tmp_path / "plain" / "figures").exists()


def test_a_resumed_run_neither_loses_nor_repeats_curve_rows(tmp_path):
    _, straight = _train(tmp_path / "straight", epochs=2, eval_every=1)
    with pytest.raises(KeyboardInterrupt):
        _train(tmp_path / "killed", epochs=2, eval_every=1, die_at=3)  # 2 steps an epoch
    _, resumed = _train(tmp_path / "killed", epochs=2, eval_every=1)
    rows = [json.loads(line) for line in (tmp_path / "killed" / "train_log.jsonl").open()]
    assert [r["epoch"] for r in rows] == [1, 2]
    for key in ("eval/knn/auroc", "eval/linear/auroc", "eval/linear/acc"):
        assert [r[key] for r in rows] == [r[key] for r in straight], key
    assert [r["eval/knn/auroc"] for r in resumed] == [r["eval/knn/auroc"] for r in straight]


def test_neither_key_changes_the_encoder_cache_key(medmnist_root):
    from medssl.data.medmnist_source import load_medmnist

    breast = load_medmnist(
        "breastmnist",
        size=28,
        root=str(medmnist_root),
        download=False,
        positive_class=0,
        references=[],
        store_dir=None,
    )
    base = key_of([], breast)
    assert key_of(["trainer.eval_every=1"], breast) == base
    assert key_of(["trainer.keep_epochs=[1]"], breast) == base


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["trainer.keep_epochs=[2]"], r"keep_epochs=\[2\] names epochs \[2\].*trainer.epochs=1"),
        (["trainer.eval_every=0"], r"trainer.eval_every must be .* got 0"),
    ],
)
def test_impossible_settings_are_refused_before_training(overrides, message, medmnist_root):
    from medssl.data.medmnist_source import load_medmnist

    breast = load_medmnist(
        "breastmnist",
        size=28,
        root=str(medmnist_root),
        download=False,
        positive_class=0,
        references=[],
        store_dir=None,
    )
    with pytest.raises(MedsslError, match=message):
        key_of(overrides, breast)


def test_kept_encoders_reach_the_job_folder_from_the_cache_and_evaluate(tmp_path, monkeypatch):
    # 48 images a split in BreastMNIST's layout: the whole chain in seconds.
    write_fake_medmnist(tmp_path / "medmnist", "breastmnist", n=48)
    monkeypatch.setenv("MEDMNIST_ROOT", str(tmp_path / "medmnist"))
    overrides = [*TINY, "trainer.batch_size=16", "trainer.epochs=2", "label_frac=0.5"]
    overrides += ["trainer.eval_every=1", "trainer.keep_epochs=[1,2]", "trainer.precision=fp32"]
    overrides += [f"cache.dir={tmp_path / 'cache'}", "eval_outputs.figures=false"]
    job = tmp_path / "job"
    results = run(compose_config(overrides), job)
    cached = tmp_path / "cache" / results["pretrain/cache_key"]
    rows = [json.loads(line) for line in (job / "train_log.jsonl").open()]
    assert [r["eval/linear/auroc"] is not None for r in rows] == [True, True]
    # The curve's last linear probe is the evaluation's, fitted on the same features.
    assert rows[-1]["eval/linear/auroc"] == pytest.approx(results["val/linear/auroc"], abs=1e-9)
    assert (job / "figures" / "pretraining_curve.png").is_file()
    final = torch.load(job / "encoder.pt", weights_only=True)
    kept = {e: torch.load(job / "encoders" / f"epoch_00{e}.pt", weights_only=True) for e in (1, 2)}
    assert (cached / "encoders" / "epoch_001.pt").samefile(job / "encoders" / "epoch_001.pt")
    assert kept[2]["epoch"] == 2 and kept[2].keys() - {"epoch"} == final.keys()
    for name, value in final["state_dict"].items():
        assert torch.equal(kept[2]["state_dict"][name], value), name
    assert not all(torch.equal(kept[1]["state_dict"][k], v) for k, v in final["state_dict"].items())

    # A job of another label fraction reuses the encoder and finds the same kept files.
    other = tmp_path / "other"
    reused = run(compose_config([*overrides, "label_frac=0.25"]), other)
    assert reused["pretrain/reused"] is True
    assert (other / "encoders" / "epoch_002.pt").samefile(job / "encoders" / "epoch_002.pt")
    assert (other / "figures" / "pretraining_curve.png").is_file()

    # python -m medssl.cli.evaluate scores a kept encoder fully; epoch 2 is the final encoder.
    cfg = compose_evaluate(
        [f"ckpt={job / 'encoders' / 'epoch_002.pt'}", "eval_outputs.figures=false"]
        + ["label_frac=0.5", "trainer.precision=fp32"]
    )
    scored = evaluate_checkpoint(cfg, tmp_path / "eval")
    assert scored["test/linear/auroc"] == pytest.approx(results["test/linear/auroc"], abs=1e-9)
    assert np.isfinite(scored["val/linear/auroc"])
