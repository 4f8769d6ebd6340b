"""Data-parallel training is one model on the global batch: `gather=True` losses are a no-op in
one process and the global-batch loss across two gloo processes, and a real DDP step of SimCLR
and VICReg gives the loss and gradients of one process on the concatenated batch."""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from medssl.data.image_store import open_split
from medssl.data.model_input import to_model_input
from medssl.losses.gather import gather, gather_no_grad, world_size
from medssl.losses.nt_xent import NTXentLoss
from medssl.losses.vicreg import VICRegLoss
from medssl.methods.simclr import SimCLR
from medssl.methods.vicreg import VICReg
from medssl.models.small_cnn import SmallCNN
from medssl.training.batch_feed import StreamedFeed
from medssl.training.distributed import Distributed
from tests.losses.paper_losses import barlow, nt_xent, supcon, triplet, vicreg

# Each loss with its paper's arguments (tests/losses/paper_losses.py); `gather` is passed.
PAIR_LOSSES = {"nt_xent": nt_xent, "vicreg": vicreg, "barlow": barlow}
LABELLED_LOSSES = {"supcon": supcon, "triplet": triplet}


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


def _methods():
    """SimCLR and VICReg on a small CNN, initialised alike in every process; BatchNorm in eval
    mode, since on CPUs its statistics are per process (SyncBatchNorm needs CUDA)."""
    out = {}
    for name, build in {
        "simclr": lambda: SimCLR(
            SmallCNN(1, width=4, name="smallcnn", input_size=16),
            NTXentLoss(temperature=0.2, gather=True),
            proj_hidden_dim=16,
            proj_dim=8,
        ),
        "vicreg": lambda: VICReg(
            SmallCNN(1, width=4, name="smallcnn", input_size=16),
            VICRegLoss(
                invariance_weight=25.0,
                variance_weight=25.0,
                covariance_weight=1.0,
                gamma=1.0,
                eps=1e-4,
                gather=True,
            ),
            proj_hidden_dim=16,
            proj_dim=16,
        ),
    }.items():
        torch.manual_seed(0)
        out[name] = build().eval()
    return out


def _views(n=8):
    g = torch.Generator().manual_seed(1)
    return [torch.randn(n, 1, 12, 12, generator=g) for _ in range(2)]


def _stored_images() -> torch.Tensor:
    """Eight 12 px images in a `.npy`, opened memory-mapped as the store opens a split."""
    g = torch.Generator().manual_seed(2)
    images = torch.randint(0, 256, (8, 1, 12, 12), dtype=torch.uint8, generator=g)
    handle, path = tempfile.mkstemp(suffix=".npy")
    os.close(handle)
    np.save(path, images.numpy())
    mapped = open_split(Path(path))
    os.unlink(path)  # the mapping keeps the data
    return mapped


def _image_views(images: torch.Tensor) -> list[torch.Tensor]:
    x = to_model_input(images)
    return [x, x.flip(-1)]


def _model_step(method, views, model=None) -> tuple[float, dict[str, torch.Tensor]]:
    loss = (model or method)(views)["loss"]
    loss.backward()
    return loss.item(), {k: p.grad.clone() for k, p in method.named_parameters()}


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
        # A real step: this process's share of the global batch, as the training loop takes it.
        context = Distributed(rank=rank, world_size=world)
        share = context.shard(torch.arange(len(_views()[0])))
        for name, method in _methods().items():
            model = context.wrap(method, torch.device("cpu"))
            out[f"step/{name}"] = _model_step(method, [v[share] for v in _views()], model)
        # The same step with this process's share gathered by the streamed feed from a store.
        feed = StreamedFeed(_stored_images(), torch.device("cpu"))
        order = torch.arange(len(feed))
        ((images, _),) = list(feed.batches(order, range(1), len(order), context.shard))
        for name, method in _methods().items():
            model = context.wrap(method, torch.device("cpu"))
            out[f"streamed/{name}"] = _model_step(method, _image_views(images), model)
        results[rank] = out
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def two_processes() -> dict:
    """What each of two gloo processes computed (about 5 s to start them)."""
    world = 2
    results = mp.Manager().dict()
    mp.spawn(_worker, args=(world, _free_port(), results), nprocs=world, join=True)
    return dict(results)


@pytest.mark.integration  # two real gloo processes
def test_two_gloo_processes_see_the_global_batch_and_send_gradients_home(two_processes):
    world = len(two_processes)
    z_a, z_b, labels = _data()
    half = len(z_a) // world
    for name, cls in {**PAIR_LOSSES, **LABELLED_LOSSES}.items():
        a = z_a.clone().requires_grad_(True)
        full = cls()(a, z_b) if name in PAIR_LOSSES else cls()(a, labels)
        full.backward()
        for rank in range(world):
            value, grad = two_processes[rank][name]
            assert value == pytest.approx(full.item(), rel=1e-5), name
            # Each process computes the global loss, so its rows get world x the gradient,
            # which DDP's averaging of parameter gradients divides out again.
            torch.testing.assert_close(grad / world, a.grad[rank * half : (rank + 1) * half])


@pytest.mark.integration
@pytest.mark.parametrize("name", ["simclr", "vicreg"])
def test_one_ddp_step_equals_one_process_on_the_concatenated_batch(two_processes, name):
    loss, grads = _model_step(_methods()[name], _views())
    for rank in two_processes:
        ddp_loss, ddp_grads = two_processes[rank][f"step/{name}"]
        assert ddp_loss == pytest.approx(loss, rel=1e-5)
        assert ddp_grads.keys() == grads.keys()
        # float32 sums in another order: near-cancelling gradients (a last bias) differ slightly;
        # a real fault (a loss of the local share only, gradients summed) is off by 100 %
        scale = max(float(g.abs().max()) for g in grads.values())
        for key in grads:
            torch.testing.assert_close(ddp_grads[key], grads[key], rtol=1e-3, atol=1e-4 * scale)


@pytest.mark.integration
@pytest.mark.parametrize("name", ["simclr", "vicreg"])
def test_a_ddp_step_fed_streamed_equals_one_process_on_the_whole_batch(two_processes, name):
    loss, grads = _model_step(_methods()[name], _image_views(_stored_images()))
    for rank in two_processes:
        ddp_loss, ddp_grads = two_processes[rank][f"streamed/{name}"]
        assert ddp_loss == pytest.approx(loss, rel=1e-5)
        # As above; these smooth views leave a few gradients nearer to cancelling.
        scale = max(float(g.abs().max()) for g in grads.values())
        for key in grads:
            torch.testing.assert_close(ddp_grads[key], grads[key], rtol=1e-3, atol=1e-3 * scale)
