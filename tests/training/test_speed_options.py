"""Speed options change how pretraining runs, never what it computes or saves."""

from __future__ import annotations

import pytest
import torch

from medssl.losses.nt_xent import NTXentLoss
from medssl.methods.simclr import SimCLR
from medssl.models.small_cnn import SmallCNN
from medssl.training.speed import SpeedOptions, in_memory_format
from tests.conftest import compose_config


def _method() -> SimCLR:
    torch.manual_seed(0)
    return SimCLR(
        SmallCNN(1, width=8, name="smallcnn", input_size=16),
        NTXentLoss(temperature=0.2, gather=True),
        proj_hidden_dim=16,
        proj_dim=8,
    )


def _views(device="cpu"):
    g = torch.Generator().manual_seed(1)
    return [torch.randn(8, 1, 16, 16, generator=g).to(device) for _ in range(2)]


def test_the_yaml_holds_every_option_and_builds_them():
    from hydra.utils import instantiate

    speed = instantiate(compose_config().trainer.speed)
    assert speed == SpeedOptions(compile=False, channels_last=True, tf32=True)


def test_on_a_cpu_channels_last_and_tf32_leave_the_model_alone():
    method = _method()
    tf32 = torch.backends.cuda.matmul.allow_tf32
    fmt = SpeedOptions(compile=False, channels_last=True, tf32=not tf32).apply(
        method, torch.device("cpu")
    )
    assert fmt is None and torch.backends.cuda.matmul.allow_tf32 == tf32
    conv = method.backbone.features[0][0].weight
    assert conv.is_contiguous() and in_memory_format(_views(), None)[0].is_contiguous()


def test_views_are_put_in_the_memory_format_asked_for():
    (view, _) = in_memory_format(_views(), torch.channels_last)
    assert view.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(view, _views()[0])


@pytest.mark.slow  # compiling on a CPU takes 30-60 s
def test_compile_keeps_the_state_dict_keys_and_the_loss():
    eager, compiled = _method(), _method()
    SpeedOptions(compile=True, channels_last=False, tf32=False).apply(compiled, torch.device("cpu"))
    assert list(compiled.state_dict()) == list(eager.state_dict())
    expected = eager(_views())["loss"]
    assert compiled(_views())["loss"].item() == pytest.approx(expected.item(), rel=1e-4)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_cuda_a_cnn_trains_channels_last_with_tf32():
    device = torch.device("cuda")
    method, reference = _method().to(device), _method().to(device)
    fmt = SpeedOptions(compile=False, channels_last=True, tf32=True).apply(method, device)
    assert fmt == torch.channels_last and torch.backends.cuda.matmul.allow_tf32
    assert method.backbone.features[0][0].weight.is_contiguous(memory_format=torch.channels_last)
    loss = method(in_memory_format(_views(device), fmt))["loss"]
    loss.backward()
    assert loss.item() == pytest.approx(reference(_views(device))["loss"].item(), rel=1e-2)
