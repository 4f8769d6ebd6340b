"""`evaluate_encoder` on synthetic multi-class, ordinal and multi-label data: keys and figures."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from medssl.data.splits import DatasetSplits, Split
from medssl.evaluation.knn import KNNClassifier
from medssl.evaluation.linear_probe import LinearProbe
from medssl.evaluation.output_options import EvalOutputOptions
from medssl.evaluation.runner import evaluate_encoder
from medssl.models.small_cnn import SmallCNN

OPTIONS = dict(
    n_bins=10,
    figures=True,
    cam=True,
    cam_images=4,
    gallery_size=4,
    embedding_max_points=40,
    tsne_perplexity=5,
    tsne_max_iter=250,
    positive_class=None,
)


def synthetic(task: str, n: int = 40, k: int = 3, seed: int = 0) -> DatasetSplits:
    rng = np.random.default_rng(seed)

    def split():
        if task == "multilabel":
            labels = rng.integers(0, 2, (n, k))
            labels[:k] = np.eye(k, dtype=int)
            labels[k : 2 * k] = 1 - np.eye(k, dtype=int)
            shade = labels @ (60 * np.arange(1, k + 1))
        else:
            labels = np.arange(n) % k
            shade = 70 * labels
        images = rng.integers(0, 40, (n, 3, 16, 16)) + shade[:, None, None, None]
        return Split(
            torch.as_tensor(np.clip(images, 0, 255), dtype=torch.uint8), torch.as_tensor(labels)
        )

    return DatasetSplits(
        name="synthetic",
        task=task,
        class_names=[f"class {i}" for i in range(k)],
        train=split(),
        val=split(),
        test=split(),
    )


# Figures are slow on shared CPUs; each task type draws its own kinds once.
@pytest.mark.parametrize(
    "task,figures", [("multiclass", True), ("ordinal", False), ("multilabel", True)]
)
def test_every_task_gets_its_metrics_and_figures(task, figures, tmp_path):
    torch.manual_seed(0)
    data = synthetic(task)
    protocols = {
        "linear": LinearProbe(Cs=(1.0,), max_iter=1000, class_weight="balanced", link="softmax"),
        "knn": KNNClassifier(k=5, temperature=0.07),
    }
    options = EvalOutputOptions(**{**OPTIONS, "figures": figures, "cam": figures})
    results = evaluate_encoder(
        SmallCNN(in_chans=3, width=4, name="smallcnn", input_size=16),
        data,
        torch.arange(40),
        protocols,
        options=options,
        run_dir=tmp_path,
        device=torch.device("cpu"),
        precision="fp32",
    )
    for name in protocols:
        for key in (
            "acc",
            "auroc",
            "kappa",
            "nll",
            "brier",
            "ece",
            "ece_mass",
            "mce",
            "ece_ts",
            "aurc",
        ):
            assert math.isfinite(results[f"test/{name}/{key}"]), (name, key)
        assert not any(
            k.startswith(f"test/{name}/op/") for k in results
        )  # operating points: binary only
        assert (tmp_path / "figures" / f"reliability_{name}.png").exists() == figures
        assert (tmp_path / "figures" / f"confusion_{name}.png").exists() == (
            figures and task != "multilabel"
        )
    if task == "multilabel":  # sigmoid per label: temperature keeps each label's ranking
        assert results["test/linear/auroc_ts"] == pytest.approx(
            results["test/linear/auroc"], abs=1e-12
        )
    if task == "ordinal":
        assert results["test/linear/kappa"] <= 1
    for figure in ("pca", "tsne", "gradcam_linear"):
        assert (tmp_path / "figures" / f"{figure}.png").exists() == figures


def test_eval_config_errors_are_one_sentence():
    from medssl import MedsslError
    from medssl.evaluation.build import build_evaluation
    from tests.conftest import compose_config

    def built(overrides):
        cfg = compose_config(overrides)
        return build_evaluation(cfg.eval, cfg.eval_outputs)

    protocols, options, analyses = built(["eval=[linear,finetune,knn]"])
    assert (
        list(protocols) == ["linear", "finetune", "knn"]
        and options.n_bins == 15
        and not options.cam
    )
    # The analyses are off by default and never taken for protocols.
    assert not analyses.robustness.enabled and not analyses.mc_dropout.enabled
    assert analyses.shift_dataset is None
    with pytest.raises(MedsslError, match="eval_outputs could not be built"):
        built(["+eval_outputs.camm=true"])
    with pytest.raises(MedsslError, match="no evaluation protocol"):
        built(["~eval.linear"])
