"""The input pretrained weights expect, made on the device from the input every encoder sees.

Every encoder takes `model_input.to_model_input(stored)`: the dataset's images at their own size
and channels, mapped to [0, 1] and then to medssl's symmetric [-1, 1]. Weights pretrained on
photographs (ImageNet, DINO) expect something else: their own input size, RGB, and their own
mean and std (timm's `pretrained_cfg`). `PretrainedInput` maps the first to the second, per
batch: back to [0, 1] (`model_input.denormalize`), to the weights' size (`resize` with the
weights' interpolation, as timm's eval transform does, or `zero_pad`: the image centred on
black, as MedMNIST+ (Doerrich et al. 2024) does), grayscale repeated to the weights' channels,
then `(x - mean) / std`.

`attach` puts it in front of a timm model's `forward_features`, which `forward` calls, so the
same transform runs wherever the encoder sees images (feature extraction, fine-tuning,
pretraining, Grad-CAM) without any caller knowing. It is a plain attribute, not a submodule:
the state dict, parameters and children of the model are those of the timm model alone.
"""

from __future__ import annotations

import dataclasses
import types
from dataclasses import dataclass

import timm
import torch
import torch.nn.functional as F
from torch import nn

from medssl.data.model_input import denormalize
from medssl.errors import MedsslError

TRANSFORMS = ("none", "pretrained")
FITS = ("resize", "zero_pad")


@dataclass(frozen=True)
class PretrainedInput:
    """medssl model input `(B, C, h, w)` -> the weights' input `(B, channels, size, size)`."""

    size: int
    fit: str
    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    interpolation: str

    def __post_init__(self) -> None:
        if self.fit not in FITS:
            raise MedsslError(
                f"backbone.input.fit must be one of {', '.join(FITS)}, got {self.fit!r}."
            )

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = self.fitted(denormalize(x))
        if x.shape[1] != self.channels:
            if x.shape[1] != 1:
                raise ValueError(
                    f"{x.shape[1]}-channel images for weights that take {self.channels} channels"
                )
            x = x.expand(-1, self.channels, -1, -1)
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        return (x - mean) / std

    def fitted(self, x: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] at `size` x `size`: resized, or centred on zeros (black)."""
        height, width = x.shape[-2:]
        if (height, width) == (self.size, self.size):
            return x
        if self.fit == "resize":
            return F.interpolate(
                x, size=(self.size, self.size), mode=self.interpolation, antialias=True
            ).clamp_(0.0, 1.0)
        if height > self.size or width > self.size:
            raise ValueError(f"cannot zero-pad {height}x{width} images to {self.size} px")
        top, left = (self.size - height) // 2, (self.size - width) // 2
        return F.pad(x, (left, self.size - width - left, top, self.size - height - top))

    def describe(self) -> dict:
        """What the transform does, as plain data (the feature cache keys on it)."""
        return dataclasses.asdict(self)


def pretrained_input(
    name: str, image_size: int, in_chans: int, *, size: int | str, fit: str
) -> PretrainedInput:
    """The transform for timm model `name`'s pretrained config, for `in_chans`-channel images of
    `image_size` px; `size`: `auto` (the weights' own input size) or a number of pixels."""
    cfg = timm.models.get_pretrained_cfg(name)
    if cfg is None or cfg.mean is None or cfg.input_size is None:
        raise MedsslError(
            f"timm has no pretrained config (input size, mean, std) for {name}; use "
            f"backbone.input.transform=none."
        )
    channels = int(cfg.input_size[0])
    if in_chans not in (1, channels):
        raise MedsslError(
            f"{name}'s weights take {channels}-channel images; these have {in_chans} channels."
        )
    side = int(cfg.input_size[-1]) if size == "auto" else _pixels(size)
    if fit == "zero_pad" and image_size > side:
        raise MedsslError(
            f"backbone.input.fit=zero_pad cannot pad {image_size} px images to {side} px; "
            f"use fit=resize or a larger backbone.input.size."
        )
    interpolation = (
        cfg.interpolation if cfg.interpolation in ("bilinear", "bicubic") else "bilinear"
    )
    return PretrainedInput(side, fit, channels, tuple(cfg.mean), tuple(cfg.std), interpolation)


def _pixels(size: int | str) -> int:
    if isinstance(size, int) and not isinstance(size, bool) and size > 0:
        return size
    raise MedsslError(f"backbone.input.size must be auto or a number of pixels, got {size!r}.")


def attach(model: nn.Module, transform: PretrainedInput) -> nn.Module:
    """`model` with `transform` applied to every input of its `forward_features` (and so of
    `forward`); a copy (`copy.deepcopy`) keeps it."""
    if not callable(getattr(type(model), "forward_features", None)):
        raise MedsslError(
            f"{type(model).__name__} has no forward_features; use backbone.input.transform=none."
        )
    model.pretrained_input = transform
    model.forward_features = types.MethodType(_transformed_forward_features, model)
    return model


def _transformed_forward_features(model: nn.Module, x: torch.Tensor, *args, **kwargs):
    return type(model).forward_features(model, model.pretrained_input(x), *args, **kwargs)


def input_transform(encoder: nn.Module) -> PretrainedInput | None:
    """The transform `attach` put on `encoder`, or None."""
    return getattr(encoder, "pretrained_input", None)
