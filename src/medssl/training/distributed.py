"""Data-parallel training: one process per device, DDP averaging the gradients.

    torchrun --standalone --nproc_per_node=4 train.py hydra.run.dir=outputs/ddp_run ...
    python train.py -m hydra/launcher=slurm hydra.launcher.gpus_per_node=4 ...

torchrun sets WORLD_SIZE, RANK and LOCAL_RANK itself. A submitit job of several tasks (SLURM's
`tasks_per_node`, one per GPU) runs one process per task without torchrun, so its job
environment is turned into the same variables first. Nothing changes with one process:
`setup_distributed` returns a single-process context. Otherwise every process pretrains on its
share of each global batch (`trainer.batch_size` is the global batch); the main process alone
writes files and evaluates. The backend is NCCL on GPUs and gloo on CPUs.
"""

from __future__ import annotations

import datetime
import logging
import os
import zlib
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

    def gather_objects(self, obj) -> list:
        """Every process's `obj`, in rank order, on every process (e.g. per-rank RNG states)."""
        if not self.enabled:
            return [obj]
        gathered = [None] * self.world_size
        dist.all_gather_object(gathered, obj)
        return gathered

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


def master_port(job_id: str) -> int:
    """The rendezvous port of a job: the same in all its tasks, different for jobs that share a
    node. SLURM array tasks have ids like `1234_5`."""
    number = int(job_id) if job_id.isdigit() else zlib.crc32(job_id.encode())
    return 20000 + number % 20000


def export_submitit_environment() -> None:
    """Inside a submitit job of several tasks and not under torchrun, set the variables torchrun
    would have set, from submitit's view of the job (its first host leads the rendezvous)."""
    if "WORLD_SIZE" in os.environ or "SUBMITIT_EXECUTOR" not in os.environ:
        return
    import submitit

    job = submitit.JobEnvironment()
    if job.num_tasks == 1:
        return
    os.environ.update(
        MASTER_ADDR=job.hostnames[0],
        MASTER_PORT=os.environ.get("MASTER_PORT", str(master_port(job.job_id))),
        RANK=str(job.global_rank),
        WORLD_SIZE=str(job.num_tasks),
        LOCAL_RANK=str(job.local_rank),
        LOCAL_WORLD_SIZE=str(job.num_tasks // job.num_nodes),
    )


def process_rank() -> int:
    """This process's rank in its job, known before torch.distributed starts (so that only
    rank 0 keeps a job's books); 0 in a single-process run."""
    export_submitit_environment()
    return int(os.environ.get("RANK", "0"))


def setup_distributed(device: str = "auto") -> tuple[Distributed, torch.device]:
    export_submitit_environment()
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return Distributed(), resolve_device(device)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and device in ("auto", "cuda")
    if use_cuda:
        # A site that binds one GPU per task shows each task only its own.
        index = local_rank % torch.cuda.device_count()
        torch.cuda.set_device(index)
        resolved = torch.device("cuda", index)
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
