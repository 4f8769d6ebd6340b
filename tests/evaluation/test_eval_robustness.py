"""Robustness and cross-dataset shift on synthetic separable images: fitted protocols score
corrupted and shifted images without refitting; keys, summary tables and the figure."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

from medssl import MedsslError
from medssl.evaluation import analysis_figures
from medssl.evaluation.analyses import Analyses
from medssl.evaluation.corruptions import BrightnessShift, GaussianNoise
from medssl.evaluation.knn import KNNClassifier
from medssl.evaluation.linear_probe import LinearProbe
from medssl.evaluation.output_options import EvalOutputOptions
from medssl.evaluation.robustness import Robustness, severity_curves
from medssl.evaluation.run_summary import summary_markdown
from medssl.evaluation.runner import evaluate_encoder
from medssl.evaluation.shift import check_shift_dataset
from medssl.models.small_cnn import SmallCNN
from tests.evaluation.conftest import blob_data

OPTIONS = EvalOutputOptions(
    n_bins=10,
    figures=False,
    cam=False,
    cam_images=4,
    gallery_size=4,
    embedding_max_points=40,
    tsne_perplexity=5,
    tsne_max_iter=250,
    positive_class=None,
)


def evaluate(data, analyses, tmp_path):
    torch.manual_seed(0)
    return evaluate_encoder(
        SmallCNN(in_chans=data.channels, width=4, name="smallcnn", input_size=16),
        data,
        torch.arange(len(data.train)),
        {
            "linear": LinearProbe(
                Cs=(1.0,), max_iter=1000, class_weight="balanced", link="softmax"
            ),
            "knn": KNNClassifier(k=5, temperature=0.07),
        },
        options=OPTIONS,
        run_dir=tmp_path,
        device=torch.device("cpu"),
        precision="fp32",
        analyses=analyses,
    )


def test_noise_lowers_the_metrics_of_fitted_protocols_and_the_keys_tables_and_figure_exist(
    tmp_path,
):
    robustness = Robustness(
        True,
        {"noise": GaussianNoise([0.04, 0.26]), "brightness": BrightnessShift([0.1, 0.5])},
        [1, 2],
        seed=0,
    )
    results = evaluate(
        blob_data(), Analyses(robustness=robustness, mc_dropout=None, shift_dataset=None), tmp_path
    )
    for protocol in ("linear", "knn"):
        assert results[f"test/{protocol}/auroc"] > 0.95  # the clean task is learnt
        for name in ("noise", "brightness"):
            for severity in (1, 2):
                for metric in ("auroc", "acc", "ece", "ece_ts"):
                    value = results[f"test/{protocol}/corrupt/{name}/{severity}/{metric}"]
                    assert 0 <= value <= 1
        # Strong noise costs AUROC and accuracy, more than weak noise does.
        noise = {s: results[f"test/{protocol}/corrupt/noise/{s}/auroc"] for s in (1, 2)}
        assert noise[2] < results[f"test/{protocol}/auroc"] - 0.05
        assert noise[2] < noise[1]
        assert (
            results[f"test/{protocol}/corrupt/noise/2/acc"] < results[f"test/{protocol}/acc"] - 0.05
        )
        mean = np.mean(
            [
                results[f"test/{protocol}/corrupt/{n}/{s}/auroc"]
                for n in robustness.corruptions
                for s in (1, 2)
            ]
        )
        assert results[f"test/{protocol}/auroc_corrupt"] == pytest.approx(mean)
    curves = severity_curves(results, "linear", "auroc")
    assert curves["noise"][0] == [0, 1, 2]
    assert curves["noise"][1][0] == results["test/linear/auroc"]  # severity 0 is the clean test set
    summary = summary_markdown(results)
    assert "| AUROC | corruption | clean | 1 | 2 | mean |" in summary
    assert f"| linear | noise | {results['test/linear/auroc']:.3f} |" in summary
    path = analysis_figures.robustness_plot(
        tmp_path / "robustness.png",
        {m: severity_curves(results, "linear", m) for m in ("auroc", "acc", "ece", "ece_ts")},
        "linear",
    )
    assert Image.open(path).size[0] > 800


def test_shift_to_a_copy_gives_the_test_metrics_and_a_mismatch_is_one_sentence(tmp_path):
    data = blob_data()
    copy = dataclasses.replace(data, name="copy")
    results = evaluate(
        data, Analyses(robustness=None, mc_dropout=None, shift_dataset=copy), tmp_path
    )
    assert results["shift/copy/n"] == 64
    for protocol in ("linear", "knn"):
        # Scored by the protocol as fitted: the test split under another name scores the same.
        for metric in ("auroc", "acc", "ece", "nll", "ece_ts", "aurc"):
            assert results[f"shift/copy/{protocol}/{metric}"] == pytest.approx(
                results[f"test/{protocol}/{metric}"], abs=1e-9
            ), (protocol, metric)
    assert "Shift to copy (64 test images" in summary_markdown(results)
    for other, expected in (
        (blob_data(channels=3, name="rgb"), "3-channel 16 px images"),
        (dataclasses.replace(data, name="multi", task="multiclass"), "a multiclass task"),
    ):
        pattern = (
            f"eval.analyses.shift_dataset '{other.name}' has .*{expected}.* but dataset 'blobs' has"
        )
        with pytest.raises(MedsslError, match=pattern) as error:
            check_shift_dataset(other, data)
        assert str(error.value).count(". ") == 0 and str(error.value).endswith(".")
