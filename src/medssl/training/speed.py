"""GPU speed options of pretraining, fine-tuning and feature extraction: TF32 matmuls,
channels-last CNNs, torch.compile.

None of them changes what is trained, only how fast (TF32 rounds fp32 matmul inputs to a 10-bit
mantissa, which bf16 runs do anyway), so none is part of the encoder cache key or the
checkpoint fingerprint. On a CPU only `compile` applies.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import nn

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SpeedOptions:
    compile: bool  # torch.compile the encoder (minutes of compilation before the first step)
    channels_last: bool  # NHWC memory for CNN encoders on CUDA (tensor cores prefer it)
    tf32: bool  # TF32 for fp32 matmuls and convolutions on Ampere or newer GPUs

    def apply(self, method: nn.Module, device: torch.device) -> torch.memory_format | None:
        """Set the options up for `method` on `device`; returns the memory format its input
        batches must have (None: leave them as they are)."""
        return self.apply_to(method, method.backbone, device)

    def apply_to(
        self, model: nn.Module, encoder: nn.Module, device: torch.device
    ) -> torch.memory_format | None:
        """Set the options up for `model` on `device`, compiling its `encoder` (pretraining:
        the method and its backbone; fine-tuning: the encoder with its head); returns the
        memory format its input batches must have (None: leave them as they are)."""
        if device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = self.tf32
            torch.backends.cudnn.allow_tf32 = self.tf32
        memory_format = self.memory_format(model, device)
        if memory_format is not None:
            model.to(memory_format=memory_format)
        if self.compile:
            # In place, so the state dict keeps its keys (checkpoints and encoder.pt unchanged).
            encoder.compile()
        log.info(
            "Speed options on %s: compile=%s, channels_last=%s, tf32=%s",
            device,
            self.compile,
            memory_format is not None,
            device.type == "cuda" and self.tf32,
        )
        return memory_format

    def memory_format(self, model: nn.Module, device: torch.device) -> torch.memory_format | None:
        """channels-last for a model with convolutions on CUDA when asked for, else None."""
        if device.type != "cuda" or not self.channels_last:
            return None
        has_conv = any(isinstance(m, nn.Conv2d) for m in model.modules())
        return torch.channels_last if has_conv else None


def in_memory_format(views: list[torch.Tensor], memory_format) -> list[torch.Tensor]:
    if memory_format is None:
        return views
    return [v.contiguous(memory_format=memory_format) for v in views]


def batch_in_memory_format(x: torch.Tensor, memory_format) -> torch.Tensor:
    """One batch in `memory_format` (None: as it is)."""
    return x if memory_format is None else x.contiguous(memory_format=memory_format)
