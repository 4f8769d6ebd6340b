"""`python -m medssl.cli.evaluate ckpt=PATH dataset=...` re-evaluates a saved encoder without training."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from omegaconf import OmegaConf

import medssl.cli.evaluate  # noqa: F401  registers the `evaluate` config
from medssl.cli.evaluate import sweep_subdir
from medssl.data.label_subset import labelled_subset
from medssl.data.medmnist_source import load_medmnist
from medssl.evaluation.output_options import EvalOutputOptions
from medssl.evaluation.runner import evaluate_encoder
from medssl.models.small_cnn import SmallCNN
from tests.cli.conftest import save_encoder
from tests.conftest import compose_evaluate


@pytest.mark.integration
def test_cli_reproduces_an_in_process_evaluation_of_the_saved_weights(tmp_path, medmnist_root):
    encoder = save_encoder(tmp_path / "encoder.pt")
    out = tmp_path / "eval"
    cmd = [
        sys.executable,
        "-m",
        "medssl.cli.evaluate",
        f"ckpt={tmp_path / 'encoder.pt'}",
        "dataset=breastmnist",
        "eval=[linear]",
        "eval_outputs.figures=false",
        "trainer.precision=fp32",
        f"hydra.run.dir={out}",
    ]
    proc = subprocess.run(
        cmd,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "MEDMNIST_ROOT": str(medmnist_root)},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert (out / "summary.md").exists() and not (out / "figures").exists()

    data = load_medmnist(
        "breastmnist",
        28,
        str(medmnist_root),
        False,
        positive_class=0,
        references=[],
        store_dir=None,
    )
    labelled = labelled_subset(data.train.labels, 0.1, 0, data.class_names)
    from medssl.evaluation.linear_probe import LinearProbe

    options = EvalOutputOptions(
        n_bins=15,
        figures=False,
        cam=False,
        cam_images=0,
        gallery_size=0,
        embedding_max_points=0,
        tsne_perplexity=5,
        tsne_max_iter=250,
        positive_class=None,
    )
    expected = evaluate_encoder(
        encoder,
        data,
        labelled,
        {
            "linear": LinearProbe(
                Cs=[1e-3, 1e-2, 1e-1, 1.0, 10.0],
                max_iter=1000,
                class_weight="balanced",
                link="softmax",
            )
        },
        options=options,
        run_dir=tmp_path / "direct",
        device=torch.device("cpu"),
        precision="fp32",
    )
    for key in ("test/linear/auroc", "test/linear/acc", "test/linear/ece_ts", "linear/C"):
        assert results[key] == pytest.approx(expected[key], abs=1e-6), key
    assert results["ckpt"] == str(tmp_path / "encoder.pt") and results["n/labelled"] == 55


@pytest.mark.integration
def test_a_sweep_over_kept_encoders_gives_one_named_folder_each(tmp_path, medmnist_root):
    """`-m ckpt=a,b` fans the evaluations out (with `hydra/launcher=slurm`, as array jobs);
    each job's folder is `<run>/<checkpoint>` and the other overrides, not the whole path."""
    kept = tmp_path / "my-run" / "encoders"
    kept.mkdir(parents=True)
    save_encoder(kept / "epoch_001.pt")
    torch.manual_seed(7)
    weights = torch.load(kept / "epoch_001.pt", weights_only=True)
    other = SmallCNN(in_chans=1, width=8, name="smallcnn", input_size=28)
    torch.save({**weights, "state_dict": other.state_dict()}, kept / "epoch_002.pt")
    sweep = tmp_path / "evals"
    ckpts = ",".join(str(kept / f"epoch_00{e}.pt") for e in (1, 2))
    cmd = [sys.executable, "-m", "medssl.cli.evaluate", "-m", f"ckpt={ckpts}", "eval=[knn]"]
    cmd += ["eval_outputs.figures=false", "trainer.precision=fp32", f"hydra.sweep.dir={sweep}"]
    env = {**os.environ, "MEDMNIST_ROOT": str(medmnist_root)}
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    folders = sorted(p.parent.relative_to(sweep).as_posix() for p in sweep.rglob("results.json"))
    rest = "eval=[knn],trainer.precision=fp32"  # figures are bookkeeping: not in the name
    assert folders == [f"my-run/epoch_001,{rest}", f"my-run/epoch_002,{rest}"]
    scores = [json.loads((sweep / f / "results.json").read_text()) for f in folders]
    assert [r["ckpt"] for r in scores] == [str(kept / f"epoch_00{e}.pt") for e in (1, 2)]
    assert scores[0]["test/knn/auroc"] != scores[1]["test/knn/auroc"]


def test_sweep_folder_names_drop_only_the_checkpoint_item():
    assert sweep_subdir("/x/run/encoder.pt", "ckpt=/x/run/encoder.pt") == "run/encoder"
    assert (
        sweep_subdir(
            "/x/r/encoders/epoch_010.pt", "ckpt=/x/r/encoders/epoch_010.pt,eval=[linear,knn]"
        )
        == "r/epoch_010,eval=[linear,knn]"
    )
    assert sweep_subdir("/x/r/encoder.pt", "a=1,ckpt=/x/r/encoder.pt,z=2") == "r/encoder,a=1,z=2"


def test_ckpt_is_required_and_bad_input_lives_in_the_bad_input_matrix():
    """Each refusal of medssl.cli.evaluate (no ckpt, a missing, junk, forged or mismatched
    encoder, a training run's folder) is a case of tests/test_bad_input.py."""
    assert OmegaConf.is_missing(compose_evaluate([]), "ckpt")
