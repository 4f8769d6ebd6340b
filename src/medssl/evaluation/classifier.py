"""The `classifier` protocol: the network a label-trained method learnt, scored as it is.

The supervised baseline trains an encoder and a linear head together (MedMNIST v2's ResNet
baselines); this protocol fits nothing and predicts with that head on the frozen encoder's
features (BatchNorm in eval mode), so its numbers are the trained network's own, at the epoch
picked on val when `method.select_on_val` is on. A method without such a head (SSL methods,
`random`, or a supervised encoder trained on another dataset's labels) is refused in one
sentence, or skipped with a logged reason when `missing_head: skip` (for sweeps that mix
methods under one `eval` list).
"""

from __future__ import annotations

import copy
import logging

import numpy as np
import torch
from torch import nn

from medssl.errors import MedsslError
from medssl.evaluation.protocol import EvalInputs, ProtocolOutput

log = logging.getLogger(__name__)

MISSING_HEAD = ("error", "skip")


class TrainedClassifier:
    def __init__(self, missing_head: str) -> None:
        if missing_head not in MISSING_HEAD:
            raise MedsslError(
                f"eval.classifier.missing_head must be one of {MISSING_HEAD}, got {missing_head!r}."
            )
        self.missing_head = missing_head

    def evaluate(self, inputs: EvalInputs) -> ProtocolOutput | None:
        if inputs.head is None:
            if self.missing_head == "skip":
                log.warning(
                    "classifier protocol skipped: this encoder comes without a head trained on "
                    "this dataset's labels (only method=supervised trains one)"
                )
                return None
            raise MedsslError(
                "eval=classifier scores the head that method=supervised trains on this dataset's "
                "labels, and this run has none; use eval=linear (or "
                "eval.classifier.missing_head=skip in a sweep that mixes methods)."
            )
        head = copy.deepcopy(inputs.head).cpu().float().eval()

        @torch.no_grad()
        def logits(features: np.ndarray) -> np.ndarray:
            return head(torch.as_tensor(features, dtype=torch.float32)).double().numpy()

        return ProtocolOutput(
            val=logits(inputs.features("val")),
            test=logits(inputs.features("test")),
            predict=lambda images: logits(inputs.features_of(images)),
            params=dict(inputs.head_info),
            model=nn.Sequential(inputs.encoder, head).eval(),
        )
