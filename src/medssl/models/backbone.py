"""Encoders from timm with one interface: `encoder(x) -> (batch, encoder.num_features)`.

`small_input` swaps a CNN's stride-2 (or patchify) stem for a 3x3 stride-1 convolution and drops
the stem's max-pool, as the MedMNIST v2 baselines do, so a 28 px image is not shrunk to 7 px at
once. It knows ResNet's `conv1`, ConvNeXt's `stem` and EfficientNet/MobileNet's `conv_stem`;
`small_input: auto` turns it on for inputs of 64 px and less. Vision transformers take
`img_size: auto` (the dataset's size) and a small `patch_size` instead.

ImageNet weights: `weights=PATH` loads a local checkpoint (a state dict, or one under `state_dict`
or `model`); its first convolution is adapted to `in_chans` as timm does for its own weights
(summing RGB kernels for one channel). `pretrained=true` downloads timm's weights from the
Hugging Face hub, which needs network access.

`input.transform: pretrained` shows the weights the images as they were trained on instead
(data/pretrained_input.py): the model takes the weights' channels (grayscale is repeated, not
summed into the kernels) and the weights' input size (`input.size`, reached by `input.fit`),
which `img_size: auto` and `small_input: auto` then follow.
"""

from __future__ import annotations

import logging
from pathlib import Path

import timm
import torch
from timm.models import adapt_input_conv
from torch import nn

from medssl.data.pretrained_input import TRANSFORMS, PretrainedInput, attach, pretrained_input
from medssl.errors import MedsslError
from medssl.models.small_cnn import SmallCNN

log = logging.getLogger(__name__)

SMALL_INPUT_MAX_SIZE = 64
# Classifier weights of a checkpoint are dropped: encoders are built with num_classes=0.
CLASSIFIER_PREFIXES = ("fc.", "head.", "classifier.", "head.fc.", "last_linear.")


def create_backbone(
    name: str,
    in_chans: int,
    input_size: int,
    *,
    small_input: bool | str,
    pretrained: bool,
    weights: str | None,
    **timm_kwargs,
) -> nn.Module:
    """A timm model without classifier (`num_classes=0`) taking `in_chans`-channel images
    (`input`: how they reach it, `transform: none` or `pretrained` with its `size` and `fit`)."""
    # Encoders saved before `input` existed have none in their record: images as stored.
    transform = _input_transform(name, in_chans, input_size, timm_kwargs.pop("input", None))
    if transform is not None:
        in_chans, input_size = transform.channels, transform.size
    # A `null` in config means "timm's default", so it must not reach timm as None.
    timm_kwargs = {k: v for k, v in timm_kwargs.items() if v is not None}
    if timm_kwargs.get("img_size") == "auto":
        timm_kwargs["img_size"] = input_size
    if pretrained and weights:
        raise MedsslError("set either backbone.pretrained=true or backbone.weights=PATH, not both.")
    try:
        model = timm.create_model(
            name, pretrained=pretrained, num_classes=0, in_chans=in_chans, **timm_kwargs
        )
    except RuntimeError as error:
        if "Unknown model" in str(error):
            raise MedsslError(
                f"timm has no model named {name!r} (see timm.list_models())."
            ) from None
        if pretrained:
            raise _unreachable(name, error) from None
        raise
    except (OSError, ValueError, ImportError) as error:
        # huggingface_hub signals a missing network or an uncached file with OSError subclasses.
        if pretrained:
            raise _unreachable(name, error) from None
        raise
    if weights:
        load_weights(model, weights, in_chans)
    model.weights_source = weights or (f"timm:{name}" if pretrained else None)
    if _wants_small_input(small_input, input_size):
        if model.weights_source is not None:
            log.warning(
                "small_input replaces the loaded weights' stem with a new, random one at %d px; "
                "backbone.small_input=false, or backbone.input.transform=pretrained at the "
                "weights' size, keeps it",
                input_size,
            )
        _use_small_stem(model, name)
    return model if transform is None else attach(model, transform)


def _input_transform(name: str, in_chans: int, input_size: int, spec) -> PretrainedInput | None:
    """`backbone.input` as a `PretrainedInput`, or None for `transform: none`."""
    transform = "none" if spec is None else spec["transform"]
    if transform not in TRANSFORMS:
        raise MedsslError(
            f"backbone.input.transform must be one of {', '.join(TRANSFORMS)}, got {transform!r}."
        )
    if transform == "none":
        return None
    return pretrained_input(name, input_size, in_chans, size=spec["size"], fit=spec["fit"])


def create_small_cnn(
    in_chans: int, input_size: int, *, name: str, width: int, weights: str | None
) -> nn.Module:
    """medssl's SmallCNN, with the weights of a checkpoint at `weights` (e.g. the encoder.pt of
    a medssl run) when set, so `method=frozen` can score it."""
    model = SmallCNN(in_chans, width=width, name=name, input_size=input_size)
    if weights:
        load_weights(model, weights, in_chans)
    model.weights_source = weights
    return model


def _unreachable(name: str, error: Exception) -> MedsslError:
    return MedsslError(
        f"could not fetch timm's pretrained weights for {name} ({type(error).__name__}); the hub is not "
        f"reachable from here: download them elsewhere and pass backbone.pretrained=false "
        f"backbone.weights=PATH."
    )


def load_weights(model: nn.Module, path: str | Path, in_chans: int) -> None:
    """Load a local checkpoint into `model`, adapting the first conv to `in_chans` channels."""
    path = Path(path)
    if not path.is_file():
        raise MedsslError(f"backbone.weights={path} is not a file.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise MedsslError(
            f"cannot read backbone weights {path} ({type(error).__name__})."
        ) from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    state = {k.removeprefix("module."): v for k, v in state.items()}
    state = {k: v for k, v in state.items() if not k.startswith(CLASSIFIER_PREFIXES)}
    own = model.state_dict()
    for key, value in list(state.items()):
        target = own.get(key)
        if target is None or value.shape == target.shape:
            continue
        if (
            value.ndim == 4
            and value.shape[0] == target.shape[0]
            and value.shape[2:] == target.shape[2:]
        ):
            state[key] = adapt_input_conv(in_chans, value)  # e.g. RGB ImageNet kernels to 1 channel
        else:
            raise MedsslError(
                f"backbone.weights {path}: {key} has shape {tuple(value.shape)} but the "
                f"model expects {tuple(target.shape)}; is it a checkpoint of this model?"
            )
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise MedsslError(
            f"backbone.weights {path} does not fit the model: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}."
        )
    log.info("Loaded backbone weights from %s", path)


def _wants_small_input(small_input: bool | str, input_size: int) -> bool:
    if small_input == "auto":
        return input_size <= SMALL_INPUT_MAX_SIZE
    if isinstance(small_input, bool):
        return small_input
    raise MedsslError(f"backbone.small_input must be true, false or auto, got {small_input!r}.")


def _stride_one_conv(conv: nn.Conv2d) -> nn.Conv2d:
    return nn.Conv2d(conv.in_channels, conv.out_channels, 3, 1, 1, bias=conv.bias is not None)


def _use_small_stem(model: nn.Module, name: str) -> None:
    conv1 = getattr(model, "conv1", None)
    stem = getattr(model, "stem", None)
    conv_stem = getattr(model, "conv_stem", None)
    if isinstance(conv1, nn.Conv2d):  # ResNet family: 7x7/2 conv, then 3x3/2 max-pool
        model.conv1 = _stride_one_conv(conv1)
        if hasattr(model, "maxpool"):
            model.maxpool = nn.Identity()
    elif isinstance(stem, nn.Sequential) and isinstance(
        stem[0], nn.Conv2d
    ):  # ConvNeXt: 4x4/4 patchify
        stem[0] = _stride_one_conv(stem[0])
    elif isinstance(conv_stem, nn.Conv2d):  # EfficientNet, MobileNet: 3x3/2
        model.conv_stem = _stride_one_conv(conv_stem)
    else:
        log.warning(
            "small_input has no effect on %s: no ResNet, ConvNeXt or EfficientNet stem", name
        )
        return
    log.info("small_input: %s stem replaced by a 3x3 stride-1 convolution", name)


def weights_source(model: nn.Module) -> str | None:
    """Where the encoder's weights came from (`timm:<name>` or a file), None if initialised."""
    return getattr(model, "weights_source", None)


def feature_dim(model: nn.Module) -> int:
    # Models with a pre-logits layer (MobileNetV3, some ViTs) output head_hidden_size features.
    return int(getattr(model, "head_hidden_size", None) or model.num_features)
