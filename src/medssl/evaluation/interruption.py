"""A signal during evaluation: SIGTERM, SIGUSR1 or Ctrl-C while the protocols fit and score.

Pretraining stops at a step boundary with a checkpoint (`training.stop_signals`). Evaluation
keeps none of its own: the encoder it evaluates is already saved, and the same command run
again evaluates that encoder from the start without pretraining it again. Fine-tuning on a
large labelled set is the longest part to lose, but it restarts from the same saved encoder.
So a signal here stops at once, with a log line that says so and the shell's exit status for
the signal (143 for SIGTERM). Handlers another framework installed (submitit's requeue) stay.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from medssl.training.stop_signals import RunStopped

SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)
UNTOUCHED = (signal.SIG_DFL, signal.default_int_handler)


class EvaluationStopped(RunStopped):
    """Evaluation stopped by a signal; `again` says how a rerun continues."""

    def __init__(self, signum: int, again: str) -> None:
        super().__init__(signum, checkpoint="")
        self.args = (f"stopped by {signal.Signals(signum).name} while evaluating; {again}",)


@contextmanager
def stop_on_signals(again: str) -> Iterator[None]:
    """Within the block, SIGTERM, SIGUSR1 and SIGINT raise `EvaluationStopped(again)`."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise EvaluationStopped(signum, again)

    previous = {}
    for sig in SIGNALS:
        if signal.getsignal(sig) in UNTOUCHED:
            previous[sig] = signal.signal(sig, stop)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
