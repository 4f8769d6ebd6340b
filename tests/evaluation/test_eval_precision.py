"""Fine-tuning and feature extraction run as pretraining does: autocast in the resolved
precision, a live GradScaler for fp16, channels-last and compile from `trainer.speed`."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch

from medssl.evaluation.calibration import logits_to_probs
from medssl.evaluation.metrics import auroc
from medssl.training.device import grad_scaler
from medssl.training.features import extract_features
from medssl.training.speed import SpeedOptions
from tests.evaluation.conftest import blob_inputs
from tests.evaluation.finetune_settings import finetune

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
SHORT = dict(epochs=2, batch_size=32, head_only_epochs=0, warmup_epochs=0, patience=2)


def inputs_on(device: str = "cpu", **changes):
    """The blob task on `device`, with `changes` (an encoder among them) to EvalInputs."""
    inputs = blob_inputs()
    encoder = changes.pop("encoder", inputs.encoder).to(device)
    return dataclasses.replace(inputs, encoder=encoder, device=torch.device(device), **changes)


def test_finetuning_under_bf16_autocast_on_a_cpu_gives_finite_scores():
    inputs = inputs_on(precision="bf16")
    out = finetune(**SHORT).evaluate(inputs)
    assert np.isfinite(out.val).all() and np.isfinite(out.test).all()
    score = auroc("binary", inputs.labels["test"], logits_to_probs("binary", out.test))
    assert np.isfinite(score)


def test_the_grad_scaler_is_live_for_fp16_only():
    cpu = torch.device("cpu")
    assert grad_scaler(cpu, "fp16").is_enabled()
    assert not grad_scaler(cpu, "bf16").is_enabled() and not grad_scaler(cpu, "fp32").is_enabled()


def test_an_fp16_step_whose_gradients_overflow_is_skipped_and_the_scale_lowered():
    inputs = inputs_on(precision="fp16")  # fp16 autocast runs on CPUs in this torch
    tune = finetune(**SHORT)
    model = tune.build_model(inputs)
    run = tune.start_run(model, inputs)
    assert run.scaler.is_enabled()
    run.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**100)  # every fp16 gradient: inf
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    model.train_phase(encoder_frozen=False)
    run.train_epoch(inputs, scheduled=True)
    assert run.scaler.get_scale() < 2.0**100
    for name, value in model.named_parameters():
        assert torch.equal(value, before[name]), name  # no update went through


def test_fp16_finetuning_with_a_live_scaler_learns():
    inputs = inputs_on(precision="fp16")
    out = finetune(**{**SHORT, "epochs": 3, "lr": 1e-2}).evaluate(inputs)
    score = auroc("binary", inputs.labels["val"], logits_to_probs("binary", out.val))
    assert np.isfinite(out.test).all() and score > 0.8


def test_bf16_features_match_fp32_features():
    inputs = inputs_on()
    images = inputs.images["val"]
    kwargs = dict(device=inputs.device, batch_size=32)
    fp32 = extract_features(inputs.encoder, images, precision="fp32", **kwargs)
    bf16 = extract_features(inputs.encoder, images, precision="bf16", **kwargs)
    assert bf16.dtype == torch.float32
    scale = fp32.abs().max()
    torch.testing.assert_close(bf16, fp32, atol=float(2e-2 * scale), rtol=2e-2)


def test_channels_last_features_equal_contiguous_ones():
    inputs = inputs_on()
    images = inputs.images["val"]
    nhwc = copy.deepcopy(inputs.encoder).to(memory_format=torch.channels_last)
    kwargs = dict(device=inputs.device, batch_size=32)
    plain = extract_features(inputs.encoder, images, **kwargs)
    fast = extract_features(nhwc, images, memory_format=torch.channels_last, **kwargs)
    torch.testing.assert_close(fast, plain, atol=1e-5, rtol=1e-5)


def test_on_a_cpu_the_speed_options_leave_evaluation_alone():
    speed = SpeedOptions(compile=False, channels_last=True, tf32=True)
    inputs = inputs_on(speed=speed)
    assert inputs.memory_format is None
    tune = finetune(**SHORT)
    run = tune.start_run(tune.build_model(inputs), inputs)
    assert run.memory_format is None and not run.scaler.is_enabled()


@pytest.mark.gpu
@CUDA
def test_on_cuda_evaluation_runs_channels_last_with_the_same_features():
    speed = SpeedOptions(compile=False, channels_last=True, tf32=False)
    plain = inputs_on("cuda")
    fast = inputs_on("cuda", encoder=copy.deepcopy(plain.encoder), speed=speed)
    assert fast.memory_format == torch.channels_last
    conv = next(m for m in fast.encoder.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    np.testing.assert_allclose(fast.features("val"), plain.features("val"), atol=1e-4, rtol=1e-4)
    tune = finetune(**SHORT)
    run = tune.start_run(tune.build_model(fast), fast)
    assert run.memory_format == torch.channels_last


@pytest.mark.gpu
@CUDA
@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_on_cuda_finetuning_under_autocast_gives_finite_scores(precision):
    speed = SpeedOptions(compile=False, channels_last=True, tf32=True)
    inputs = inputs_on("cuda", precision=precision, speed=speed)
    out = finetune(**{**SHORT, "epochs": 3, "lr": 1e-2}).evaluate(inputs)
    score = auroc("binary", inputs.labels["val"], logits_to_probs("binary", out.val))
    assert np.isfinite(out.test).all() and score > 0.8


@pytest.mark.gpu
@CUDA
def test_on_cuda_compiled_finetuning_matches_eager_scores():
    speed = SpeedOptions(compile=True, channels_last=False, tf32=False)
    torch.manual_seed(0)  # the same random head for both
    eager = finetune(**SHORT).evaluate(inputs_on("cuda"))
    torch.manual_seed(0)
    compiled = finetune(**SHORT).evaluate(inputs_on("cuda", speed=speed))
    np.testing.assert_allclose(compiled.val, eager.val, atol=1e-2, rtol=1e-2)


@pytest.mark.slow  # compiling on a CPU takes tens of seconds
def test_compiled_evaluation_gives_the_features_and_finetuning_of_eager():
    speed = SpeedOptions(compile=True, channels_last=False, tf32=False)
    eager = inputs_on()
    compiled = inputs_on(encoder=copy.deepcopy(eager.encoder), speed=speed)
    assert list(compiled.encoder.state_dict()) == list(eager.encoder.state_dict())
    np.testing.assert_allclose(compiled.features("val"), eager.features("val"), atol=1e-5)
    torch.manual_seed(0)
    tuned_eager = finetune(**SHORT).evaluate(eager)
    torch.manual_seed(0)
    tuned_compiled = finetune(**SHORT).evaluate(compiled)
    np.testing.assert_allclose(tuned_compiled.val, tuned_eager.val, atol=1e-3, rtol=1e-3)
