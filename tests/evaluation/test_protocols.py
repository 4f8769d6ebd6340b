"""Evaluation protocols on synthetic data: the probe's folded head, k-NN votes, fine-tuning, Grad-CAM."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from medssl.evaluation.calibration import logits_to_probs
from medssl.evaluation.gradcam import grad_cam, last_conv_block
from medssl.evaluation.knn import KNNClassifier
from medssl.evaluation.linear_probe import LinearProbe, fold_into_linear
from medssl.evaluation.metrics import auroc
from medssl.evaluation.protocol import EvalInputs
from medssl.models.small_cnn import SmallCNN
from tests.evaluation.finetune_settings import finetune


@pytest.mark.parametrize("task,k", [("binary", 2), ("multiclass", 4), ("multilabel", 3)])
def test_folded_linear_head_reproduces_sklearn_probabilities(task, k):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 6)) * rng.uniform(0.5, 5, 6) + rng.normal(size=6)
    y = rng.integers(0, 2, (120, k)) if task == "multilabel" else rng.integers(0, k, 120)
    clf = LogisticRegression(C=0.5, max_iter=500)
    pipeline = make_pipeline(
        StandardScaler(), OneVsRestClassifier(clf) if task == "multilabel" else clf
    ).fit(x, y)
    head = fold_into_linear(pipeline, task, k)
    with torch.no_grad():
        logits = head(torch.as_tensor(x, dtype=torch.float32)).double().numpy()
    np.testing.assert_allclose(logits_to_probs(task, logits), pipeline.predict_proba(x), atol=1e-5)


def test_folded_head_gives_a_missing_class_near_zero_probability():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(60, 4)), rng.choice([0, 2], 60)  # class 1 never labelled
    pipeline = make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y)
    probs = logits_to_probs(
        "multiclass",
        fold_into_linear(pipeline, "multiclass", 3)(torch.as_tensor(x, dtype=torch.float32))
        .detach()
        .double()
        .numpy(),
    )
    assert probs[:, 1].max() < 1e-6
    np.testing.assert_allclose(probs[:, [0, 2]], pipeline.predict_proba(x), atol=1e-5)


def test_knn_votes_match_a_direct_loop():
    rng = np.random.default_rng(2)
    bank, labels, queries = (
        rng.normal(size=(40, 5)),
        rng.integers(0, 3, 40),
        rng.normal(size=(7, 5)),
    )
    knn = KNNClassifier(k=5, temperature=0.1)
    probs = knn.predict_proba("multiclass", 3, bank, labels, queries)
    for q, row in zip(queries, probs, strict=True):
        sims = bank @ q / np.linalg.norm(bank, axis=1) / np.linalg.norm(q)
        top = np.argsort(-sims)[:5]
        votes = np.zeros(3)
        for i in top:
            votes[labels[i]] += np.exp(sims[i] / 0.1)
        np.testing.assert_allclose(row, votes / votes.sum(), atol=1e-5)
    # k beyond the bank size uses the whole bank; bad settings are refused.
    assert KNNClassifier(k=500, temperature=0.1).predict_proba(
        "multiclass", 3, bank, labels, queries
    ).shape == (
        7,
        3,
    )
    with pytest.raises(ValueError, match="temperature"):
        KNNClassifier(k=5, temperature=0)


def blob_images(rng, n, size=12):
    """Class 1 images carry a bright square in the top-left corner, class 0 in the bottom-right."""
    y = rng.integers(0, 2, n)
    images = rng.integers(0, 60, (n, 1, size, size))
    for i, label in enumerate(y):
        if label:
            images[i, :, 1:5, 1:5] = 250
        else:
            images[i, :, -5:-1, -5:-1] = 250
    return torch.as_tensor(images, dtype=torch.uint8), y


def synthetic_inputs(seed=0, n=48):
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    splits = {s: blob_images(rng, n) for s in ("train", "val", "test")}
    return EvalInputs(
        task="binary",
        num_classes=2,
        encoder=SmallCNN(in_chans=1, width=4, name="smallcnn", input_size=12),
        images={s: v[0] for s, v in splits.items()},
        labels={s: v[1] for s, v in splits.items()},
        device=torch.device("cpu"),
        batch_size=32,
    )


def test_features_use_frozen_batchnorm():
    inputs = synthetic_inputs()
    inputs.encoder.train()
    full = inputs.features("test")
    alone = EvalInputs(
        **{
            **inputs.__dict__,
            "_features": {},
            "images": {**inputs.images, "test": inputs.images["test"][:3]},
            "labels": {**inputs.labels, "test": inputs.labels["test"][:3]},
        }
    ).features("test")
    np.testing.assert_allclose(full[:3], alone, atol=1e-5)  # batch-independent: eval-mode BatchNorm
    assert inputs.encoder.training  # and the encoder's mode is restored


def test_linear_probe_and_knn_learn_the_synthetic_task():
    inputs = synthetic_inputs()
    for protocol in (
        LinearProbe(Cs=(0.1, 1.0), max_iter=1000, class_weight="balanced", link="softmax"),
        KNNClassifier(k=5, temperature=0.1),
    ):
        out = protocol.evaluate(inputs)
        assert out.val.shape == out.test.shape == (48, 2)
        assert auroc("binary", inputs.labels["test"], logits_to_probs("binary", out.test)) > 0.8


def test_finetune_keeps_the_best_val_checkpoint_and_leaves_the_encoder_alone():
    inputs = synthetic_inputs()
    before = {k: v.clone() for k, v in inputs.encoder.state_dict().items()}
    out = finetune(
        epochs=4,
        batch_size=16,
        lr=1e-2,
        head_only_epochs=1,
        patience=2,
        head="linear",
        probe=None,
    ).evaluate(inputs)
    # The returned val logits are the checkpoint's, and that checkpoint had the best val AUROC.
    val_auroc = auroc("binary", inputs.labels["val"], logits_to_probs("binary", out.val))
    assert val_auroc == pytest.approx(out.params["best_val_auroc"], abs=1e-6)
    assert 1 <= out.params["best_epoch"] <= out.params["epochs_run"] <= 4
    assert auroc("binary", inputs.labels["test"], logits_to_probs("binary", out.test)) > 0.8
    for key, value in inputs.encoder.state_dict().items():  # fine-tuning works on a copy
        torch.testing.assert_close(value, before[key])


def test_finetune_head_only_epochs_do_not_touch_the_encoder():
    inputs = synthetic_inputs()
    out = finetune(
        epochs=2, batch_size=16, head_only_epochs=2, patience=5, head="linear", probe=None
    ).evaluate(inputs)
    tuned = out.model[0].state_dict()
    for key, value in inputs.encoder.state_dict().items():
        torch.testing.assert_close(tuned[key], value)  # weights and BatchNorm statistics alike
    with pytest.raises(ValueError, match="head_only_epochs"):
        finetune(epochs=2, head_only_epochs=3)


def test_grad_cam_equals_the_class_activation_map_for_gap_and_linear():
    torch.manual_seed(0)
    encoder = SmallCNN(in_chans=1, width=4, name="smallcnn", input_size=16).eval()
    head = nn.Linear(encoder.num_features, 3)
    model = nn.Sequential(encoder, head).eval()
    x = torch.randn(2, 1, 16, 16)
    layer = last_conv_block(encoder, x)
    assert layer is encoder.features
    classes = torch.tensor([0, 2])
    maps = grad_cam(model, layer, x, classes)
    # Zhou et al. 2016: CAM_c = sum_k w_ck A_k; Grad-CAM's weights are w_ck / (h w), same map after scaling.
    with torch.no_grad():
        a = encoder.features(x)
        cam = torch.relu(torch.einsum("bk,bkhw->bhw", head.weight[classes], a))[:, None]
        cam = nn.functional.interpolate(cam, size=(16, 16), mode="bilinear", align_corners=False)[
            :, 0
        ]
        cam = cam / cam.flatten(1).max(1).values.view(-1, 1, 1)
    torch.testing.assert_close(maps, cam, atol=1e-5, rtol=1e-4)
    assert maps.shape == (2, 16, 16) and maps.min() >= 0 and maps.max() <= 1
    assert all(p.grad is None for p in model.parameters())


def test_last_conv_block_of_a_resnet_and_of_a_model_without_one():
    import timm

    resnet = timm.create_model("resnet18", num_classes=0, in_chans=1)
    assert last_conv_block(resnet, torch.randn(2, 1, 64, 64)) is resnet.layer4
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(64, 8))
    assert last_conv_block(mlp, torch.randn(2, 1, 8, 8)) is None
