"""The interface every evaluation protocol implements: `EvaluationProtocol`, whose
`evaluate(inputs)` returns a `ProtocolOutput`.

`EvalInputs` holds what a protocol may touch: the encoder, the labelled training images, val and
test, the frozen features of each split (extracted once, on first use, shared by protocols) and,
when the method trained one on this dataset's labels, its classifier head.
A protocol picks its hyper-parameters and checkpoint on val and predicts test once, at the end.
It returns logits, so that temperature scaling and the metrics downstream are the same for all,
and a `predict` function that scores other images (corrupted test images, another dataset)
with what it fitted, without fitting again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from medssl.data.intensity import IntensityMapping
from medssl.data.task import Task
from medssl.training.batch_feed import FeedOptions
from medssl.training.features import extract_features
from medssl.training.speed import SpeedOptions

SPLITS = ("train", "val", "test")


@dataclass
class EvalInputs:
    """`images[split]`: stored `(N, C, H, W)` (a tensor, memory-mapped or not, or the labelled
    rows of one as `IndexedImages`); `labels[split]`: `(N,)` or `(N, L)` numpy. `train` is the
    labelled subset only."""

    task: Task
    num_classes: int
    encoder: nn.Module
    images: dict[str, torch.Tensor]
    labels: dict[str, np.ndarray]
    device: torch.device
    precision: str = "fp32"
    batch_size: int = 512
    # The head a label-trained method learnt on encoder features, and what it says about it
    # (`selected_epoch`); None when the method trained none (or on another dataset's labels).
    head: nn.Module | None = None
    head_info: dict = field(default_factory=dict)
    intensity: IntensityMapping | None = None  # stored pixels -> [0, 1]: the dataset's mapping
    feed: FeedOptions | None = None  # how fine-tuning feeds its batches; None: resident
    # `trainer.speed`, applied to the encoder once here (channels-last on CUDA, compiled in place)
    # and by fine-tuning to its copy; None: the encoder as it comes.
    speed: SpeedOptions | None = None
    memory_format: torch.memory_format | None = field(default=None, init=False)
    _features: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for split in SPLITS:
            if len(self.images[split]) != len(self.labels[split]):
                raise ValueError(
                    f"{split}: {len(self.images[split])} images but {len(self.labels[split])} labels"
                )
        if self.speed is not None:
            self.memory_format = self.speed.apply_to(self.encoder, self.encoder, self.device)

    @property
    def n_outputs(self) -> int:
        """Logit columns: classes (2 for binary) or labels for multi-label tasks."""
        return self.num_classes

    def features(self, split: str) -> np.ndarray:
        """Frozen-encoder features `(N, num_features)` (BatchNorm in eval mode), cached."""
        if split not in self._features:
            self._features[split] = self.features_of(self.images[split])
        return self._features[split]

    def features_of(self, images: torch.Tensor) -> np.ndarray:
        """Frozen-encoder features of any uint8 images, extracted as the splits' are."""
        return extract_features(
            self.encoder,
            images,
            device=self.device,
            precision=self.precision,
            batch_size=self.batch_size,
            intensity=self.intensity,
            memory_format=self.memory_format,
        ).numpy()


@dataclass
class ProtocolOutput:
    """Logits for val and test; `predict(images)`: `(N, n_outputs)` logits for any uint8
    `(N, C, H, W)` images from the fitted protocol; the hyper-parameters chosen on val; and
    optionally the model `images -> logits` (encoder and head) for class activation maps.

    `sample_predict(images, samples, seed)`: `(samples, N, n_outputs)` logits with dropout kept
    on (MC dropout), for protocols trained with dropout before the head. `class_maps(images)`:
    `(N, n_outputs, h, w)` per-class maps of heads that make them (`cam_refine`)."""

    val: np.ndarray
    test: np.ndarray
    predict: Callable[[torch.Tensor], np.ndarray]
    params: dict[str, float] = field(default_factory=dict)
    model: nn.Module | None = None
    sample_predict: Callable[[torch.Tensor, int, int], np.ndarray] | None = None
    class_maps: Callable[[torch.Tensor], np.ndarray] | None = None


@runtime_checkable
class EvaluationProtocol(Protocol):
    """What every protocol in `eval` offers. The config key that builds it (`eval.<name>`, chosen
    with eval=[...]) is its name: the runner keeps protocols by it and prefixes their results
    with it (`test/<name>/auroc`), so the protocol itself does not carry it."""

    def evaluate(self, inputs: EvalInputs) -> ProtocolOutput | None:
        """Fit on the labelled training images (choices made on val), predict val and test
        once; None when the protocol does not apply to this run (it logs why)."""
        ...
