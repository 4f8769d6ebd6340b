"""What a checkpoint needs beyond the model and optimiser to continue exactly where it stopped.

Every random stream a process draws from (Python, NumPy, torch's global CPU and CUDA
generators, its augmentation generator) and, when it stops inside an epoch, the epoch's batch
order, the step reached and the statistics summed so far; with model selection on val, the
best epoch so far and its state. All of it is stored as tensors and plain containers, so
checkpoints load with `weights_only=True`.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from medssl.training.collapse import CollapseMonitor
from medssl.training.distributed import Distributed
from medssl.training.val_selection import ValSelection


def global_random_states() -> dict:
    np_state = np.random.get_state(legacy=False)
    return {
        "python": random.getstate(),
        "numpy": {
            "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_global_random_states(states: dict) -> None:
    version, internal, gauss_next = states["python"]
    random.setstate((version, tuple(internal), gauss_next))
    numpy = states["numpy"]
    np.random.set_state(
        {
            "bit_generator": "MT19937",
            "state": {"key": numpy["key"].numpy().astype(np.uint32), "pos": numpy["pos"]},
            "has_gauss": numpy["has_gauss"],
            "gauss": numpy["gauss"],
        }
    )
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


@dataclass
class EpochProgress:
    """One process's place in the current epoch: the batch order every process shares, the
    optimiser steps done, and the sums its end-of-epoch record is made from."""

    order: torch.Tensor
    step: int = 0
    sums: dict[str, float] = field(default_factory=dict)
    probe_losses: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def state(self) -> dict:
        return {
            "order": self.order.cpu(),
            "step": self.step,
            "sums": dict(self.sums),
            "probe_losses": list(self.probe_losses),
            "seconds": self.seconds,
        }

    @classmethod
    def from_state(cls, state: dict, device: torch.device) -> EpochProgress:
        return cls(
            order=state["order"].to(device),
            step=state["step"],
            sums=dict(state["sums"]),
            probe_losses=list(state["probe_losses"]),
            seconds=state["seconds"],
        )


@dataclass
class TrainingState:
    """Everything the loop changes as it trains, saved together and restored together."""

    method: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    generator: torch.Generator  # batch order, shared by every process
    view_generator: torch.Generator  # this process's augmentation stream
    probe: torch.nn.Module | None
    monitor: CollapseMonitor
    selection: ValSelection | None = None  # the best epoch on val so far, when the method selects

    def checkpoint(
        self,
        *,
        epochs_done: int,
        progress: EpochProgress | None,
        history: Sequence[dict],
        distributed: Distributed,
    ) -> dict:
        """The checkpoint's content, with `history`, the epoch log it is handed (stored as a
        list); every process must call it (per-rank states are gathered)."""
        own = {
            "view_generator": self.view_generator.get_state(),
            "random": global_random_states(),
            "probe": self.probe.full_state() if self.probe is not None else None,
            "monitor": self.monitor.state() if progress is not None else None,
            "progress": progress.state() if progress is not None else None,
        }
        return {
            "epoch": epochs_done,
            "step": progress.step if progress is not None else 0,
            "history": list(history),
            "method": self.method.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "generator": self.generator.get_state(),
            "selection": self.selection.state() if self.selection is not None else None,
            "ranks": distributed.gather_objects(own),
        }

    def load(self, saved: dict, rank: int, device: torch.device) -> EpochProgress | None:
        """Restore everything; returns the unfinished epoch's progress, if it stopped in one."""
        self.method.load_state_dict(saved["method"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.scaler.load_state_dict(saved["scaler"])
        # The order generator first: with one process the view stream is the same generator.
        self.generator.set_state(saved["generator"].to(self.generator.get_state().device))
        if self.selection is not None and saved.get("selection") is not None:
            self.selection.load_state(saved["selection"])
        own = saved["ranks"][rank]
        self.view_generator.set_state(
            own["view_generator"].to(self.view_generator.get_state().device)
        )
        restore_global_random_states(own["random"])
        if self.probe is not None and own["probe"] is not None:
            self.probe.load_full_state(own["probe"])
        if own["progress"] is None:
            return None
        self.monitor.load_state(own["monitor"])
        return EpochProgress.from_state(own["progress"], device)
