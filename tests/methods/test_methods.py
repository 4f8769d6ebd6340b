"""Every method x {resnet18, vit_tiny}: a few optimiser steps on real BreastMNIST images lower
the loss. Methods, optimisers and backbones are built from their real config files; to keep the
matrix fast the heads are narrow, the learning rate is referred to this tiny batch, ResNet-18
keeps its ImageNet stem (7 px after it instead of 28) and ViT-Tiny has 3 of its 12 blocks.
The same matrix at full size (small stem, 12 blocks) carries the `slow` marker."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import get_class, instantiate

from medssl.data.medmnist_source import load_medmnist
from medssl.methods.base import task_arguments
from tests.conftest import compose_config

SMALL_HEADS = {
    "simclr": ["method.proj_hidden_dim=64", "method.proj_dim=32"],
    "vicreg": ["method.proj_hidden_dim=64", "method.proj_dim=64"],
    "sicova": ["method.proj_hidden_dim=64", "method.proj_dim=64"],
    "barlow": ["method.proj_hidden_dim=64", "method.proj_dim=64"],
    "byol": ["method.proj_hidden_dim=64", "method.proj_dim=32", "method.pred_hidden_dim=64"],
    # On one repeated batch, each step enqueues keys of the very images being trained (false
    # negatives); a large queue keeps them a small share, as a real dataset would.
    "moco": ["method.proj_hidden_dim=64", "method.proj_dim=32", "method.queue_size=4096"],
    "mocov3": ["method.proj_hidden_dim=64", "method.proj_dim=32", "method.pred_hidden_dim=64"],
    # The centre's first move away from zero dominates a 4-step run; a slower centre and a
    # fixed teacher temperature let the fall show.
    "dino": [
        "method.head_hidden_dim=64",
        "method.head_bottleneck_dim=32",
        "method.out_dim=64",
        "augmentation=multicrop",
        "augmentation.local_views.n_views=2",
        "method.loss.warmup_fraction=0",
        "method.loss.center_momentum=0.99",
        "optimizer.base_lr=1e-3",
    ],
    "triplet": ["method.proj_hidden_dim=64", "method.proj_dim=32"],
    "supcon": ["method.proj_hidden_dim=64", "method.proj_dim=32"],
    "supervised": [],
}
BATCH, STEPS = 8, 4
FAST = {"resnet18": ["backbone.small_input=false"], "vit_tiny": ["+backbone.depth=3"]}
# lr = base_lr x 8 / ref: the per-method base_lr at this batch for ResNet, a quarter of it for
# the transformer, which (as in the papers' ViT recipes) wants a smaller step.
REF_BATCH = {"resnet18": 8, "vit_tiny": 32}


@pytest.fixture(scope="module")
def breast_batch(medmnist_root):
    data = load_medmnist(
        "breastmnist",
        size=28,
        root=str(medmnist_root),
        download=False,
        positive_class=0,
        references=[],
        store_dir=None,
    )
    labels = data.train.labels
    # Both classes in the batch, so triplets, SupCon positives and the probe all exist.
    idx = torch.cat([torch.nonzero(labels == c).flatten()[: BATCH // 2] for c in (0, 1)])
    return data.train.images[idx], labels[idx]


@pytest.mark.parametrize("backbone", ["resnet18", "vit_tiny"])
@pytest.mark.parametrize("name", sorted(SMALL_HEADS))
def test_a_few_steps_on_breastmnist_lower_the_loss(name, backbone, breast_batch):
    check_loss_falls(name, backbone, breast_batch, FAST[backbone])


@pytest.mark.slow
@pytest.mark.parametrize("backbone", ["resnet18", "vit_tiny"])
@pytest.mark.parametrize("name", sorted(SMALL_HEADS))
def test_full_size_backbones_lower_the_loss(name, backbone, breast_batch):
    check_loss_falls(name, backbone, breast_batch, [])


def check_loss_falls(name, backbone, breast_batch, backbone_overrides):
    torch.manual_seed(0)
    torch.set_num_threads(1)  # the matrix is many tiny steps: threads only add overhead
    images, labels = breast_batch
    cfg = compose_config(
        [
            f"method={name}",
            f"backbone={backbone}",
            f"optimizer.ref_batch_size={REF_BATCH[backbone]}",
            # The views the matrix was tuned on (these tests are about the methods): the
            # default medical views made the from-scratch ViT's first step overshoot once.
            "augmentation=simclr",
            *backbone_overrides,
            *SMALL_HEADS[name],
        ]
    )
    encoder = instantiate(cfg.backbone, in_chans=1, input_size=28)
    cls = get_class(cfg.method._target_)
    task = task_arguments(cls, "binary", 2, train_labels=labels.numpy())
    method = instantiate(cfg.method)(backbone=encoder, **task)
    method.prepare(n_images=546, batch_size=BATCH)
    optimizer = instantiate(cfg.optimizer)(method, batch_size=BATCH)
    views = instantiate(cfg.augmentation)(images, torch.Generator().manual_seed(0))
    method.train()
    losses = []
    for step in range(STEPS):
        out = method(views, labels)
        assert out["embedding"].shape == (BATCH, method.feature_dim)
        optimizer.zero_grad(set_to_none=True)
        out["loss"].backward()
        optimizer.step()
        method.on_step_end((step + 1) / STEPS)
        losses.append(out["loss"].item())
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < losses[0], losses
