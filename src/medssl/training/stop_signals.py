"""Stop at a step boundary when asked to: SIGTERM, SIGUSR1, Ctrl-C and submitit's pre-emption
signal become a request that the training loop honours after the current optimiser step.

SLURM warns a job before its time limit or a pre-emption (`--signal=USR1@90`, or submitit's
USR2) and sends SIGTERM before SIGKILL; in each case the loop writes a checkpoint that holds the
exact position in the epoch and then stops, so the requeued job repeats no step. Where another
handler was installed first (submitit's, which requeues the job), it runs after the checkpoint
is written; otherwise the run ends with `RunStopped`. A second Ctrl-C interrupts at once.
"""

from __future__ import annotations

import logging
import os
import signal
import threading

log = logging.getLogger(__name__)


class RunStopped(Exception):
    """The run stopped on a signal after writing a checkpoint it resumes from."""

    def __init__(self, signum: int, checkpoint: str) -> None:
        self.signum = signum
        self.checkpoint = checkpoint
        name = signal.Signals(signum).name
        super().__init__(
            f"stopped by {name} after writing {checkpoint}; run the same command again to resume."
        )

    @property
    def exit_status(self) -> int:
        return 128 + self.signum  # the shell's convention for a process ended by a signal


def _submitit_signal() -> int | None:
    """submitit's pre-emption signal (USR2 unless changed) inside a submitit job, else None."""
    if "SUBMITIT_EXECUTOR" not in os.environ:
        return None
    return getattr(signal, "SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2"), None)


class StopSignals:
    """`with StopSignals() as stop:` ... `if stop.requested: ...`; handlers are restored on exit.

    Signal handlers can be set only in the main thread; elsewhere this never requests a stop."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in {signal.SIGTERM, signal.SIGUSR1, signal.SIGINT, _submitit_signal()} - {None}:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame) -> None:
        if signum == signal.SIGINT and self.signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: the user does not want to wait
        if self.signum is None:
            log.warning(
                "Caught %s: stopping after this step with a checkpoint",
                signal.Signals(signum).name,
            )
        self.signum = signum

    def stop(self, checkpoint: str) -> None:
        """After the checkpoint is written: let submitit requeue its job (its handler exits on
        the main task), then end the run."""
        signum = self.signum
        previous = self._previous.get(signum)
        self.__exit__()
        if signum == _submitit_signal() and callable(previous):
            previous(signum, None)
        raise RunStopped(signum, checkpoint)
