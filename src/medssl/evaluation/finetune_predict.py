"""Predicting with a fine-tuned model: its logits, MC-dropout samples and class maps.

The encoder runs in eval-batch chunks under the resolved `trainer.precision` and
`trainer.speed` memory format; the head always runs in fp32. `fitted_output` hands the kept
checkpoint to the protocol: val and test logits, and the predict functions the analyses use
(MC-dropout samples with dropout before the head, class maps with a head that makes them).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from medssl.data.model_input import to_model_input
from medssl.evaluation.finetune_heads import FineTunedModel
from medssl.evaluation.protocol import EvalInputs, ProtocolOutput
from medssl.training.device import autocast
from medssl.training.speed import batch_in_memory_format


def fitted_output(
    model: FineTunedModel, inputs: EvalInputs, params: dict[str, float]
) -> ProtocolOutput:
    """Val and test logits of the kept checkpoint and its predict functions: MC-dropout
    samples with dropout before the head, class maps with a head that makes them."""
    return ProtocolOutput(
        val=logits(model, inputs.images["val"], inputs),
        test=logits(model, inputs.images["test"], inputs),
        predict=lambda x: logits(model, x, inputs),
        params=params,
        model=model,
        sample_predict=(
            (lambda x, samples, seed: sample_logits(model, x, inputs, samples, seed))
            if model.dropout.p > 0
            else None
        ),
        class_maps=(
            (lambda x: class_maps(model, x, inputs)) if hasattr(model.head, "class_maps") else None
        ),
    )


def _features(
    model: FineTunedModel, images: torch.Tensor, inputs: EvalInputs
) -> Iterator[torch.Tensor]:
    """The head's input for every image, in eval-batch chunks, on the device."""
    speed = inputs.speed
    memory_format = speed.memory_format(model, inputs.device) if speed is not None else None
    for start in range(0, len(images), inputs.batch_size):
        batch = images[start : start + inputs.batch_size].to(inputs.device)
        x = batch_in_memory_format(to_model_input(batch, inputs.intensity), memory_format)
        with autocast(inputs.device, inputs.precision):
            features = model.features(x)
        yield features.float()  # outside autocast: the head runs in fp32


@torch.no_grad()
def logits(model: FineTunedModel, images: torch.Tensor, inputs: EvalInputs) -> np.ndarray:
    model.eval()
    chunks = [model.head(f).cpu() for f in _features(model, images, inputs)]
    return torch.cat(chunks).double().numpy()


@torch.no_grad()
def sample_logits(
    model: FineTunedModel, images: torch.Tensor, inputs: EvalInputs, samples: int, seed: int
) -> np.ndarray:
    """`(samples, N, K)` logits, dropout on: the encoder runs once, the head `samples` times."""
    model.mc_mode()
    devices = [inputs.device] if inputs.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):  # reproducible masks, global RNG untouched
        torch.manual_seed(seed)
        chunks = [
            torch.stack([model.head(model.dropout(f)) for _ in range(samples)]).cpu()
            for f in _features(model, images, inputs)
        ]
    model.eval()
    return torch.cat(chunks, dim=1).double().numpy()


@torch.no_grad()
def class_maps(model: FineTunedModel, images: torch.Tensor, inputs: EvalInputs) -> np.ndarray:
    model.eval()
    chunks = [model.head.class_maps(f).cpu() for f in _features(model, images, inputs)]
    return torch.cat(chunks).numpy()
