"""Keeping BatchNorm running statistics to the inputs evaluation will see."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


@contextmanager
def running_stats_frozen(module: nn.Module) -> Iterator[None]:
    """Within the block, BatchNorm layers in training mode still normalise with batch
    statistics (so gradients are unchanged) but leave their running mean and variance alone.

    DINO's student also sees small local crops; their statistics differ from full-size images,
    and mixed into the running averages they would skew the student when it is evaluated."""
    layers = [m for m in module.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]
    saved = [(m.momentum, m.num_batches_tracked.clone()) for m in layers]
    for layer in layers:
        layer.momentum = 0.0  # running <- (1 - 0) * running + 0 * batch
    try:
        yield
    finally:
        # The batch count only weighs the running averages when momentum is None (a cumulative
        # mean); restoring it keeps the frozen passes out of that count too.
        for layer, (momentum, count) in zip(layers, saved, strict=True):
            layer.momentum = momentum
            layer.num_batches_tracked.copy_(count)
