"""A killed run resumes from its last checkpoint and ends where an uninterrupted run ends."""

from __future__ import annotations

import functools
import json
import os
import signal

import pytest
import torch

from medssl import MedsslError
from medssl.augment.blur import GaussianBlur
from medssl.augment.pipeline import ViewPipeline
from medssl.losses.nt_xent import NTXentLoss
from medssl.methods.simclr import SimCLR
from medssl.models.small_cnn import SmallCNN
from medssl.training.distributed import Distributed
from medssl.training.optim import build_optimizer, build_scheduler
from medssl.training.pretrain import pretrain
from medssl.training.resume import RunCheckpoint, new_training_state
from medssl.training.stop_signals import RunStopped, StopSignals
from tests.conftest import loop_settings, plain_crop


class Killed(Exception):
    pass


def _tiny(method_class):
    """A SimCLR (or a subclass) on an 8-wide SmallCNN, every argument stated as the config would."""
    return method_class(
        SmallCNN(1, width=8, name="smallcnn", input_size=16),
        NTXentLoss(temperature=0.2, gather=True),
        proj_hidden_dim=16,
        proj_dim=8,
    )


class KilledSimCLR(SimCLR):
    """Dies after `die_at` optimiser steps, like a run killed mid-epoch."""

    die_at: int | None = None
    steps = 0

    def on_step_end(self, progress: float) -> None:
        self.steps += 1
        if self.die_at is not None and self.steps == self.die_at:
            raise Killed


class SignalledViews(torch.nn.Module):
    """The view pipeline, which sends this process `signum` while making its `at`-th batch, as
    SLURM or the user would at an arbitrary moment inside an epoch."""

    def __init__(self, pipeline, at: int | None, signum: int) -> None:
        super().__init__()
        self.pipeline, self.at, self.signum, self.calls = pipeline, at, signum, 0

    def forward(self, images, generator):
        self.calls += 1
        if self.calls == self.at:
            os.kill(os.getpid(), self.signum)
        return self.pipeline(images, generator)


def _train(
    run_dir, die_at=None, epochs=3, fingerprint="a", signal_at=None, signum=None, every=None
):
    torch.manual_seed(0)
    method = _tiny(KilledSimCLR)
    method.die_at = die_at
    images = torch.randint(
        0, 256, (64, 1, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(1)
    )
    crop = plain_crop(hflip_p=0.5, p=1.0)
    blur = GaussianBlur(sigma=(0.1, 2.0), kernel_frac=0.1, p=0.5)
    pipeline = ViewPipeline(n_views=2, cpu_threads=None, crop=crop, blur=blur)
    pipeline = SignalledViews(pipeline, signal_at, signum)
    history = pretrain(
        method,
        pipeline,
        images,
        None,
        loop_settings(
            epochs=epochs, batch_size=16, precision="fp32", seed=0, checkpoint_every=every
        ),
        optimizer_factory=functools.partial(
            build_optimizer,
            name="sgd",
            base_lr=0.1,
            ref_batch_size=256,
            weight_decay=1e-4,
            momentum=0.9,
        ),
        scheduler_factory=functools.partial(
            build_scheduler, warmup_epochs=1, min_lr_ratio=0.0, warmup_lr_ratio=0.0
        ),
        device=torch.device("cpu"),
        run_dir=run_dir,
        fingerprint=fingerprint,
    )
    return method, history


def test_resume_after_a_kill_matches_an_uninterrupted_run(tmp_path):
    reference, ref_history = _train(tmp_path / "straight")
    with pytest.raises(Killed):
        _train(tmp_path / "killed", die_at=6)  # killed in epoch 2 (4 steps per epoch)
    resumed, history = _train(tmp_path / "killed")
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert [h["loss"] for h in history] == pytest.approx([h["loss"] for h in ref_history], rel=1e-5)
    for a, b in zip(reference.state_dict().values(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b)
    # One epoch log: the one returned is the one the last checkpoint and train_log.jsonl hold.
    saved = torch.load(tmp_path / "killed" / "checkpoints" / "last.pt", weights_only=True)
    assert saved["history"] == history
    lines = (tmp_path / "killed" / "train_log.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == history


def test_the_checkpoint_writes_the_epoch_log_it_is_handed_and_resume_hands_it_back(tmp_path):
    """The loop owns the epoch log: a `RunCheckpoint` keeps none, writes the one `save` is
    handed, and `resume` gives the saved one back for the next loop to take over."""
    cpu, one_process = torch.device("cpu"), Distributed()
    settings = loop_settings(epochs=3, batch_size=16, precision="fp32", seed=0)

    def checkpoint() -> RunCheckpoint:
        method = _tiny(SimCLR)
        state = new_training_state(
            method=method,
            optimizer=torch.optim.SGD(method.parameters(), lr=0.1),
            settings=settings,
            device=cpu,
            distributed=one_process,
            probe_data=None,
            selection=None,
        )
        return RunCheckpoint(
            run_dir=tmp_path, fingerprint="log", state=state, distributed=one_process
        )

    fresh = checkpoint().resume(cpu)
    assert (fresh.epochs_done, fresh.progress, fresh.history) == (0, None, ())
    history = [{"epoch": 1, "loss": 4.0}, {"epoch": 2, "loss": 3.5}]
    writer = checkpoint()
    writer.save(2, None, history=history)
    assert not hasattr(writer, "history")
    saved = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)
    assert saved["history"] == history and isinstance(saved["history"], list)
    history.append({"epoch": 3, "loss": 3.0})  # the caller's list, changed after the hand-over
    resumed = checkpoint().resume(cpu)
    assert resumed.epochs_done == 2 and resumed.progress is None
    assert resumed.history == ({"epoch": 1, "loss": 4.0}, {"epoch": 2, "loss": 3.5})


def _same_training(a, b, history_a, history_b) -> None:
    for x, y in zip(a.state_dict().values(), b.state_dict().values()):
        torch.testing.assert_close(x, y, rtol=0, atol=0)
    timing = {"seconds", "images_per_s"}
    assert [{k: v for k, v in h.items() if k not in timing} for h in history_a] == [
        {k: v for k, v in h.items() if k not in timing} for h in history_b
    ]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGUSR1, signal.SIGINT])
def test_a_stop_signal_checkpoints_inside_the_epoch_and_resumes_at_that_step(tmp_path, signum):
    reference, ref_history = _train(tmp_path / "straight")
    handler = signal.getsignal(signum)
    with pytest.raises(RunStopped) as stopped:
        _train(tmp_path / "stopped", signal_at=6, signum=signum)  # during step 2 of epoch 2
    assert stopped.value.exit_status == 128 + signum
    saved = torch.load(tmp_path / "stopped" / "checkpoints" / "last.pt", weights_only=True)
    assert (saved["epoch"], saved["step"]) == (1, 2)  # the signalled step was finished first
    assert saved["ranks"][0]["progress"]["step"] == 2
    assert signal.getsignal(signum) == handler
    resumed, history = _train(tmp_path / "stopped")
    _same_training(reference, resumed, ref_history, history)


def test_stop_signals_restore_the_handlers_they_replaced():
    before = signal.getsignal(signal.SIGTERM)
    with StopSignals() as stop:
        assert signal.getsignal(signal.SIGTERM) != before
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.requested
        with pytest.raises(KeyboardInterrupt):  # a second Ctrl-C does not wait for the step
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGTERM) == before


def test_submitit_s_preemption_handler_runs_after_the_checkpoint(monkeypatch):
    """Inside a submitit job its USR2 handler (which requeues the job) is handed the signal once
    the checkpoint is written; other signals end the run without it."""
    monkeypatch.setenv("SUBMITIT_EXECUTOR", "slurm")
    calls = []
    previous = signal.signal(signal.SIGUSR2, lambda signum, frame: calls.append(signum))
    try:
        with StopSignals() as stop:
            os.kill(os.getpid(), signal.SIGUSR2)
            assert stop.requested and calls == []  # nothing happens before the checkpoint
            with pytest.raises(RunStopped, match="stopped by SIGUSR2 after writing ckpt"):
                stop.stop("ckpt")
        assert calls == [signal.SIGUSR2]
        with StopSignals() as stop:
            os.kill(os.getpid(), signal.SIGTERM)
            with pytest.raises(RunStopped):
                stop.stop("ckpt")
        assert calls == [signal.SIGUSR2]
    finally:
        signal.signal(signal.SIGUSR2, previous)


def test_checkpoint_of_another_config_is_refused(tmp_path):
    _train(tmp_path, epochs=1)
    with pytest.raises(MedsslError, match="different configuration"):
        _train(tmp_path, epochs=1, fingerprint="b")


def test_checkpoint_names_the_config_keys_that_differ(tmp_path):
    ours = {"method": {"temperature": 0.2}, "seed": 0, "trainer": {"epochs": 1}}
    _train(tmp_path, epochs=1, fingerprint=ours)
    theirs = {"method": {"temperature": 0.5}, "seed": 1, "trainer": {"epochs": 1}}
    with pytest.raises(MedsslError, match=r"different method\.temperature, seed;"):
        _train(tmp_path, epochs=1, fingerprint=theirs)


def test_truncated_checkpoint_is_refused_with_its_name(tmp_path):
    _train(tmp_path, epochs=1)
    path = tmp_path / "checkpoints" / "last.pt"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(MedsslError, match=r"cannot read checkpoint .*last\.pt .*truncated"):
        _train(tmp_path, epochs=1)


def test_checkpoint_that_carries_code_is_refused(tmp_path):
    path = tmp_path / "checkpoints" / "last.pt"
    path.parent.mkdir(parents=True)
    torch.save({"epoch": 1, "fingerprint": "a", "payload": MedsslError("pickled object")}, path)
    with pytest.raises(MedsslError, match="not a medssl checkpoint"):
        _train(tmp_path, epochs=1)


class DivergingSimCLR(SimCLR):
    """Its loss turns NaN on the `nan_at`-th forward pass, as a diverging run's would."""

    nan_at = 3
    calls = 0

    def forward(self, views, labels=None):
        out = super().forward(views, labels)
        self.calls += 1
        if self.calls == self.nan_at:
            out["loss"] = out["loss"] * float("nan")
        return out


def _pretrain_32_images(method, run_dir, epochs: int) -> None:
    """SGD on 32 random 16 px images, batch 16, fp32 on the CPU."""
    pretrain(
        method,
        ViewPipeline(n_views=2, cpu_threads=None),
        torch.randint(0, 256, (32, 1, 16, 16), dtype=torch.uint8),
        None,
        loop_settings(epochs=epochs, batch_size=16, precision="fp32", seed=0),
        optimizer_factory=functools.partial(
            build_optimizer,
            name="sgd",
            base_lr=0.1,
            ref_batch_size=256,
            weight_decay=1e-4,
            momentum=0.9,
        ),
        scheduler_factory=functools.partial(
            build_scheduler, warmup_epochs=0, min_lr_ratio=0.0, warmup_lr_ratio=0.0
        ),
        device=torch.device("cpu"),
        run_dir=run_dir,
        fingerprint="x",
    )


def test_non_finite_loss_stops_at_once_with_a_clear_message(tmp_path):
    torch.manual_seed(0)
    method = _tiny(DivergingSimCLR)
    with pytest.raises(
        MedsslError, match=r"loss became nan at epoch 2, step 1.*last good checkpoint"
    ):
        _pretrain_32_images(method, tmp_path, epochs=3)
    # Epoch 1 is kept whole; nothing of the failed epoch was written, nothing half-written.
    assert (tmp_path / "train_log.jsonl").read_text().count("\n") == 1
    assert torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)["epoch"] == 1
    assert not list(tmp_path.rglob("*.tmp"))


class OutOfMemorySimCLR(SimCLR):
    def forward(self, views, labels=None):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")


def test_out_of_memory_says_which_batch_and_what_to_set(tmp_path):
    method = _tiny(OutOfMemorySimCLR)
    with pytest.raises(
        MedsslError,
        match=r"ran out of memory with a batch of 16 images .*trainer.batch_size=8 "
        r"trainer.accumulate_steps=2",
    ):
        _pretrain_32_images(method, tmp_path, epochs=1)


def test_checkpoints_follow_the_wall_clock_and_resume_exactly(tmp_path, monkeypatch):
    """`checkpoint_every`: past the interval a checkpoint is written at the next step boundary,
    inside the epoch too, and a run killed after it resumes exactly; within the interval no
    checkpoint is written until the last epoch."""
    from medssl.training import checkpoint_clock, resume

    saves = []
    original = resume.save_checkpoint
    monkeypatch.setattr(
        resume,
        "save_checkpoint",
        lambda path, **kw: (saves.append(kw["state"]["step"]), original(path, **kw)),
    )
    reference, ref_history = _train(tmp_path / "straight", every=3600)
    assert saves == [0]  # the end only: no epoch of this short run reached the interval
    saves.clear()
    clock = iter(range(0, 10_000, 10))  # every reading 10 s after the last
    monkeypatch.setattr(checkpoint_clock.time, "monotonic", lambda: next(clock))
    with pytest.raises(Killed):
        _train(tmp_path / "killed", die_at=6, every=25)  # killed in epoch 2 (4 steps each)
    # Readings 10 s apart, interval 25 s: written after step 3 of epoch 1, then none before the
    # kill at step 2 of epoch 2; the epoch's end was not due either.
    saved = torch.load(tmp_path / "killed" / "checkpoints" / "last.pt", weights_only=True)
    assert saves == [3] and (saved["epoch"], saved["step"]) == (0, 3)
    resumed, history = _train(tmp_path / "killed", every=25)
    _same_training(reference, resumed, ref_history, history)


def test_a_bad_checkpoint_interval_is_one_sentence():
    with pytest.raises(MedsslError, match="trainer.checkpoint_every must be a number of seconds"):
        loop_settings(epochs=1, batch_size=8, precision="fp32", seed=0, checkpoint_every=0)
