"""Embeddings from every DDP process, with gradients flowing back to each process's own rows.

Losses that compare a sample against the rest of the batch (NT-Xent, InfoNCE, SupCon, triplet)
or that need batch statistics (VICReg, Barlow Twins) see only the local batch under
DistributedDataParallel unless the embeddings are gathered first. `torch.distributed.nn`'s
all-gather is differentiable: its backward sums the gradients of every process's copy of the
loss onto the rows that process contributed. Each process computes the same global loss, so
its local rows receive `world_size` times the gradient, which DDP's gradient averaging cancels.
In a single process (or without `torch.distributed` initialised) `gather` returns its input.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F

from medssl.losses.shapes import check_labelled


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def gather(x: torch.Tensor) -> torch.Tensor:
    """Concatenate `x` `(batch, ...)` from all processes along dim 0, differentiably."""
    if world_size() == 1:
        return x
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(x.contiguous()), dim=0)


@torch.no_grad()
def gather_no_grad(x: torch.Tensor) -> torch.Tensor:
    """All-gather without gradients, for keys, queues and teacher statistics."""
    if world_size() == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts, dim=0)


def labelled_unit_embeddings(
    z: torch.Tensor, labels: torch.Tensor, global_batch: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Checked `(batch, dim)` embeddings, L2-normalised in fp32, and their labels: those of every
    process when `global_batch` (SupCon and the triplet loss compare each with all the others)."""
    check_labelled(z, labels)
    if global_batch:
        z, labels = gather(z), gather_no_grad(labels)
    return F.normalize(z.float(), dim=1), labels


@torch.no_grad()
def mean_over_processes(x: torch.Tensor) -> torch.Tensor:
    if world_size() == 1:
        return x
    x = x.clone()
    dist.all_reduce(x)
    return x / world_size()
