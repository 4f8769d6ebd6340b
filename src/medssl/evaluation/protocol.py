"""The interface every evaluation protocol implements: `protocol.evaluate(inputs) -> ProtocolOutput`.

`EvalInputs` holds what a protocol may touch: the encoder, the labelled training images, val and
test, and the frozen features of each split (extracted once, on first use, shared by protocols).
A protocol picks its hyper-parameters and checkpoint on val and predicts test once, at the end.
It returns logits, so that temperature scaling and the metrics downstream are the same for all.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from medssl.evaluation.features import extract_features

SPLITS = ("train", "val", "test")


@dataclass
class EvalInputs:
    """`images[split]`: uint8 `(N, C, H, W)`; `labels[split]`: `(N,)` or `(N, L)` numpy.
    `train` is the labelled subset only."""

    task: str
    num_classes: int
    encoder: nn.Module
    images: dict[str, torch.Tensor]
    labels: dict[str, np.ndarray]
    device: torch.device
    precision: str = "fp32"
    batch_size: int = 512
    _features: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for split in SPLITS:
            if len(self.images[split]) != len(self.labels[split]):
                raise ValueError(
                    f"{split}: {len(self.images[split])} images but {len(self.labels[split])} labels"
                )

    @property
    def n_outputs(self) -> int:
        """Logit columns: classes (2 for binary) or labels for multi-label tasks."""
        return self.num_classes

    def features(self, split: str) -> np.ndarray:
        """Frozen-encoder features `(N, num_features)` (BatchNorm in eval mode), cached."""
        if split not in self._features:
            self._features[split] = extract_features(
                self.encoder,
                self.images[split],
                device=self.device,
                precision=self.precision,
                batch_size=self.batch_size,
            ).numpy()
        return self._features[split]


@dataclass
class ProtocolOutput:
    """Logits for val and test, the hyper-parameters chosen on val, and optionally the model
    `images -> logits` (encoder and head) for class activation maps."""

    val: np.ndarray
    test: np.ndarray
    params: dict[str, float] = field(default_factory=dict)
    model: nn.Module | None = None
