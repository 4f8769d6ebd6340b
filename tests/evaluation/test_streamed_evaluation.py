"""Evaluation reads a memory-mapped split in batches: the labelled subset is gathered only when
read, and fine-tuning fed streamed gives the same model as fed resident."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from medssl.data.image_store import open_split
from medssl.data.indexed_images import IndexedImages
from medssl.evaluation.linear_probe import LinearProbe
from medssl.training.batch_feed import FeedOptions
from tests.evaluation.conftest import aggressive, imbalanced_five_class


def test_indexed_images_read_like_the_gathered_rows(tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "x.npy", rng.integers(0, 256, (30, 1, 4, 4), dtype=np.uint8))
    images = open_split(tmp_path / "x.npy")
    rows = torch.tensor([3, 7, 8, 20, 29])
    lazy, gathered = IndexedImages(images, rows), images[rows]
    assert len(lazy) == 5 and lazy.shape == gathered.shape and lazy.dtype == torch.uint8
    assert torch.equal(lazy[1:4], gathered[1:4]) and torch.equal(lazy[2], gathered[2])
    assert torch.equal(lazy[torch.tensor([4, 0])], gathered[[4, 0]])
    assert torch.equal(lazy.materialize(), gathered)
    assert lazy.numel() * lazy.element_size() == gathered.numel()


def test_finetuning_fed_streamed_equals_fed_resident(tmp_path):
    inputs = imbalanced_five_class(0)
    np.save(tmp_path / "train.npy", inputs.images["train"].numpy())
    stored = open_split(tmp_path / "train.npy")
    everything = torch.arange(len(stored))
    outputs = {}
    for mode in ("resident", "streamed"):
        torch.manual_seed(0)
        run = dataclasses.replace(
            imbalanced_five_class(0),
            images={**inputs.images, "train": IndexedImages(stored, everything)},
            feed=FeedOptions(mode, None),
        )
        outputs[mode] = aggressive(
            LinearProbe(
                Cs=(1e-3, 1e-2, 1e-1, 1.0, 10.0),
                max_iter=100,
                class_weight="balanced",
                link="softmax",
            ),
            epochs=2,
        ).evaluate(run)
    assert np.array_equal(outputs["resident"].val, outputs["streamed"].val)
    assert np.array_equal(outputs["resident"].test, outputs["streamed"].test)
