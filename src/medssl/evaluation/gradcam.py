"""Grad-CAM (Selvaraju et al., ICCV 2017) on the last convolutional block of a CNN encoder.

The class score's gradient with respect to the block's activations A, averaged over space, weighs
A's channels; the map is ReLU(sum_c alpha_c A_c), upsampled to the image and scaled to [0, 1].
For GAP followed by a linear head it equals the class activation map of Zhou et al. (2016).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


@torch.no_grad()
def last_conv_block(encoder: nn.Module, sample: torch.Tensor) -> nn.Module | None:
    """The last top-level child of `encoder` whose output is a spatial `(B, C, h, w)` map with
    h * w > 1 (ResNet `layer4`, SmallCNN `features`); None for encoders without one (ViTs)."""
    outputs: dict[str, tuple] = {}
    hooks = [
        child.register_forward_hook(
            lambda m, i, o, name=name: (
                outputs.__setitem__(name, tuple(o.shape)) if isinstance(o, torch.Tensor) else None
            )
        )
        for name, child in encoder.named_children()
    ]
    was_training = encoder.training
    try:
        encoder.eval()(sample)
    finally:
        encoder.train(was_training)
        for hook in hooks:
            hook.remove()
    spatial = [
        name for name, shape in outputs.items() if len(shape) == 4 and shape[2] * shape[3] > 1
    ]
    return dict(encoder.named_children())[spatial[-1]] if spatial else None


def grad_cam(
    model: nn.Module, layer: nn.Module, x: torch.Tensor, classes: torch.Tensor
) -> torch.Tensor:
    """`(B, H, W)` maps in [0, 1] for model inputs `x` `(B, C, H, W)` and one class index per image."""
    store = {}

    def keep(module, inputs, output):
        store["activation"] = output
        output.register_hook(lambda grad: store.__setitem__("gradient", grad))

    hook = layer.register_forward_hook(keep)
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)  # so the graph exists even for a frozen encoder
            logits = model(x)
            score = logits.gather(1, classes.view(-1, 1)).sum()
            score.backward()
    finally:
        hook.remove()
        model.train(was_training)
        model.zero_grad(set_to_none=True)  # leave no gradients behind in the encoder
    activation, gradient = store["activation"].detach(), store["gradient"]
    weights = gradient.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * activation).sum(dim=1, keepdim=True))
    cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    peak = cam.flatten(1).max(dim=1).values.clamp_min(1e-12).view(-1, 1, 1)
    return (cam / peak).float()
