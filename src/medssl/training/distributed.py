"""Data-parallel training under torchrun: one process per device, DDP averaging the gradients.

    torchrun --standalone --nproc_per_node=4 train.py hydra.run.dir=outputs/ddp_run ...

Nothing changes without torchrun: `setup_distributed` sees no WORLD_SIZE and returns a
single-process context. Under torchrun every process pretrains on its share of each global
batch (`trainer.batch_size` is the global batch); the main process alone writes files and
evaluates. The backend is NCCL on GPUs and gloo on CPUs.
"""

from __future__ import annotations

import datetime
import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from medssl.training.device import resolve_device

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Distributed:
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    def shard(self, indices: torch.Tensor) -> torch.Tensor:
        """This process's share of a global batch of indices."""
        return indices[self.rank :: self.world_size]

    def all_true(self, flag: bool, device: torch.device) -> bool:
        """True only when `flag` holds on every process (so all stop together)."""
        if not self.enabled:
            return flag
        value = torch.tensor([1.0 if flag else 0.0], device=device)
        dist.all_reduce(value, op=dist.ReduceOp.MIN)
        return bool(value.item())

    def mean(self, values: dict[str, float], device: torch.device) -> dict[str, float]:
        if not self.enabled or not values:
            return values
        keys = sorted(values)
        tensor = torch.tensor([values[k] for k in keys], device=device, dtype=torch.float64)
        dist.all_reduce(tensor)
        return dict(zip(keys, (tensor / self.world_size).tolist()))

    def broadcast(self, obj):
        """The main process's `obj` on every process (e.g. its run folder)."""
        if not self.enabled:
            return obj
        holder = [obj]
        dist.broadcast_object_list(holder, src=0)
        return holder[0]

    def wrap(self, method: nn.Module, device: torch.device) -> nn.Module:
        if not self.enabled:
            return method
        if device.type == "cuda":  # BatchNorm statistics over the global batch (CUDA only)
            method = nn.SyncBatchNorm.convert_sync_batchnorm(method)
        ids = [device.index] if device.type == "cuda" else None
        # Some methods leave parameters out of some steps (e.g. a frozen-then-unfrozen head).
        return nn.parallel.DistributedDataParallel(
            method, device_ids=ids, find_unused_parameters=True
        )


def setup_distributed(device: str = "auto") -> tuple[Distributed, torch.device]:
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return Distributed(), resolve_device(device)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and device in ("auto", "cuda")
    if use_cuda:
        torch.cuda.set_device(local_rank)
        resolved = torch.device("cuda", local_rank)
    else:
        resolved = torch.device("cpu")
    if not dist.is_initialized():
        # Evaluation on the main process can take long; the others wait at most this.
        dist.init_process_group("nccl" if use_cuda else "gloo", timeout=datetime.timedelta(hours=2))
    context = Distributed(rank=dist.get_rank(), world_size=dist.get_world_size())
    log.info("Process %d of %d on %s", context.rank, context.world_size, resolved)
    return context, resolved


def teardown_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
