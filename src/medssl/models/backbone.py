"""Encoders from timm with one interface: `encoder(x) -> (batch, encoder.num_features)`.

`small_input` swaps a CNN's stride-2 stem for a 3x3 stride-1 convolution and drops the stem's
max-pool, as the MedMNIST v2 baselines do, so a 28 px image is not shrunk to 7 px at once.
`small_input: auto` turns it on for inputs of 64 px and less.
"""

from __future__ import annotations

import logging

import timm
import torch
from torch import nn

from medssl.errors import MedsslError

log = logging.getLogger(__name__)

SMALL_INPUT_MAX_SIZE = 64


def create_backbone(
    name: str,
    in_chans: int,
    input_size: int,
    small_input: bool | str = "auto",
    pretrained: bool = False,
    **timm_kwargs,
) -> nn.Module:
    """A timm model without classifier (`num_classes=0`) taking `in_chans`-channel images."""
    # A `null` in config means "timm's default", so it must not reach timm as None.
    timm_kwargs = {k: v for k, v in timm_kwargs.items() if v is not None}
    try:
        model = timm.create_model(
            name, pretrained=pretrained, num_classes=0, in_chans=in_chans, **timm_kwargs
        )
    except RuntimeError as error:
        if "Unknown model" in str(error):
            raise MedsslError(f"timm has no model named {name!r} (see timm.list_models()).") from None
        raise
    if _wants_small_input(small_input, input_size):
        _use_small_stem(model, name)
    return model


def _wants_small_input(small_input: bool | str, input_size: int) -> bool:
    if small_input == "auto":
        return input_size <= SMALL_INPUT_MAX_SIZE
    if isinstance(small_input, bool):
        return small_input
    raise MedsslError(f"backbone.small_input must be true, false or auto, got {small_input!r}.")


def _use_small_stem(model: nn.Module, name: str) -> None:
    conv = getattr(model, "conv1", None)
    if not isinstance(conv, nn.Conv2d):
        log.warning("small_input has no effect on %s: it has no ResNet-style conv1 stem", name)
        return
    model.conv1 = nn.Conv2d(conv.in_channels, conv.out_channels, 3, 1, 1, bias=False)
    if hasattr(model, "maxpool"):
        model.maxpool = nn.Identity()


def feature_dim(model: nn.Module) -> int:
    return int(model.num_features)


@torch.no_grad()
def check_output_shape(model: nn.Module, in_chans: int, size: int) -> None:
    out = model(torch.zeros(2, in_chans, size, size))
    if out.shape != (2, feature_dim(model)):
        raise MedsslError(f"encoder returned {tuple(out.shape)}, expected (2, {feature_dim(model)}).")
