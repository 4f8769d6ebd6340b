"""`gather=True` losses: a no-op in one process, the global-batch loss across two gloo processes."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from medssl.losses.barlow import BarlowTwinsLoss
from medssl.losses.gather import gather, gather_no_grad, world_size
from medssl.losses.nt_xent import NTXentLoss
from medssl.losses.supcon import SupConLoss
from medssl.losses.triplet import TripletLoss
from medssl.losses.vicreg import VICRegLoss

PAIR_LOSSES = {"nt_xent": NTXentLoss, "vicreg": VICRegLoss, "barlow": BarlowTwinsLoss}
LABELLED_LOSSES = {"supcon": SupConLoss, "triplet": TripletLoss}


def _data(seed=0, n=8, d=6):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g), torch.randn(n, d, generator=g), torch.arange(n) % 3


def test_gather_is_a_no_op_in_a_single_process():
    assert world_size() == 1
    z = torch.randn(4, 3, requires_grad=True)
    assert gather(z) is z and gather_no_grad(z) is z
    z_a, z_b, labels = _data()
    for cls in PAIR_LOSSES.values():
        assert cls(gather=True)(z_a, z_b).item() == cls(gather=False)(z_a, z_b).item()
    for cls in LABELLED_LOSSES.values():
        assert cls(gather=True)(z_a, labels).item() == cls(gather=False)(z_a, labels).item()


def _worker(rank: int, world: int, port: int, results) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        z_a, z_b, labels = _data()
        half = len(z_a) // world
        rows = slice(rank * half, (rank + 1) * half)
        out = {}
        for name, cls in {**PAIR_LOSSES, **LABELLED_LOSSES}.items():
            a = z_a[rows].clone().requires_grad_(True)
            if name in PAIR_LOSSES:
                loss = cls(gather=True)(a, z_b[rows])
            else:
                loss = cls(gather=True)(a, labels[rows])
            loss.backward()
            out[name] = (loss.item(), a.grad.clone())
        results[rank] = out
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # spawning two Python processes that import torch takes ~5 s
def test_two_gloo_processes_see_the_global_batch_and_send_gradients_home():
    world = 2
    results = mp.Manager().dict()
    mp.spawn(_worker, args=(world, _free_port(), results), nprocs=world, join=True)
    z_a, z_b, labels = _data()
    half = len(z_a) // world
    for name, cls in {**PAIR_LOSSES, **LABELLED_LOSSES}.items():
        a = z_a.clone().requires_grad_(True)
        full = cls()(a, z_b) if name in PAIR_LOSSES else cls()(a, labels)
        full.backward()
        for rank in range(world):
            value, grad = results[rank][name]
            assert value == pytest.approx(full.item(), rel=1e-5), name
            # Each process computes the global loss, so its rows get world x the gradient,
            # which DDP's averaging of parameter gradients divides out again.
            torch.testing.assert_close(grad / world, a.grad[rank * half : (rank + 1) * half])
