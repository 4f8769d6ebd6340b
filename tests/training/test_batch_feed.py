"""The two feeds give the same batches, and the same trained weights, for the same seed; the
choice between them follows the budget and is refused where it cannot hold."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from medssl.augment.pipeline import ViewPipeline
from medssl.data.image_store import open_split
from medssl.errors import MedsslError
from medssl.losses.nt_xent import NTXentLoss
from medssl.methods.simclr import SimCLR
from medssl.models.small_cnn import SmallCNN
from medssl.training.batch_feed import ResidentFeed, StreamedFeed, choose_feed, make_feed
from medssl.training.distributed import Distributed
from medssl.training.optim import build_optimizer, build_scheduler
from medssl.training.pretrain import pretrain
from medssl.training.pretrain_settings import PretrainSettings
from tests.conftest import plain_crop

CPU = torch.device("cpu")


@pytest.fixture
def stored(tmp_path) -> torch.Tensor:
    """70 random 16 px images in a `.npy`, opened memory-mapped as the store opens a split."""
    rng = np.random.default_rng(0)
    np.save(tmp_path / "train.npy", rng.integers(0, 256, (70, 1, 16, 16), dtype=np.uint8))
    return open_split(tmp_path / "train.npy")


def _all_batches(feed, order, batch, shard=lambda idx: idx, first=0):
    micro = range(first, len(order) // batch)
    return [
        (images.clone(), idx.clone()) for images, idx in feed.batches(order, micro, batch, shard)
    ]


@pytest.mark.parametrize("world_size", [1, 2])
def test_streamed_batches_equal_resident_batches(stored, world_size):
    order = torch.randperm(len(stored), generator=torch.Generator().manual_seed(3))
    for rank in range(world_size):
        shard = Distributed(rank, world_size).shard
        resident = _all_batches(ResidentFeed(stored, CPU), order, 16, shard)
        streamed = _all_batches(StreamedFeed(stored, CPU), order, 16, shard)
        assert len(resident) == len(streamed) == 4
        for (a, ia), (b, ib) in zip(resident, streamed, strict=True):
            assert torch.equal(ia, ib) and torch.equal(a, b)
            assert torch.equal(a, stored[ia])


def test_streamed_resumes_mid_epoch_and_stops_early(stored):
    order = torch.randperm(len(stored), generator=torch.Generator().manual_seed(4))
    whole = _all_batches(StreamedFeed(stored, CPU), order, 8)
    tail = _all_batches(StreamedFeed(stored, CPU), order, 8, first=5)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(whole[5:], tail, strict=True))
    batches = StreamedFeed(stored, CPU).batches(order, range(8), 8, lambda idx: idx)
    next(batches)
    batches.close()  # the background thread stops; nothing hangs


def test_ddp_shares_are_disjoint_and_cover_the_batch(stored):
    order = torch.randperm(len(stored), generator=torch.Generator().manual_seed(5))
    per_rank = [
        _all_batches(StreamedFeed(stored, CPU), order, 12, Distributed(rank, 3).shard)
        for rank in range(3)
    ]
    for step in range(len(order) // 12):
        shares = [per_rank[rank][step][1] for rank in range(3)]
        joined = torch.cat(shares)
        assert len(set(joined.tolist())) == len(joined) == 12
        assert set(joined.tolist()) == set(order[step * 12 : (step + 1) * 12].tolist())


def _pretrain(images, run_dir, feed):
    torch.manual_seed(0)
    method = SimCLR(
        SmallCNN(1, width=8, name="smallcnn", input_size=16),
        NTXentLoss(temperature=0.2, gather=True),
        proj_hidden_dim=16,
        proj_dim=8,
    )
    pretrain(
        method,
        ViewPipeline(n_views=2, cpu_threads=None, crop=plain_crop()),
        images,
        None,
        PretrainSettings(
            epochs=2,
            batch_size=16,
            precision="fp32",
            seed=0,
            accumulate_steps=1,
            collapse_min_std=0.01,
            collapse_min_rank=2.0,
            eval_every=None,
            keep_epochs=(),
            checkpoint_every=None,
        ),
        optimizer_factory=functools.partial(
            build_optimizer,
            name="adamw",
            base_lr=1e-2,
            ref_batch_size=256,
            weight_decay=1e-4,
            momentum=0.9,
        ),
        scheduler_factory=functools.partial(
            build_scheduler, warmup_epochs=0.5, min_lr_ratio=0.0, warmup_lr_ratio=0.0
        ),
        device=CPU,
        run_dir=run_dir,
        fingerprint="feed",
        feed=feed,
    )
    return method.state_dict()


def test_streamed_and_resident_pretraining_give_identical_weights(stored, tmp_path):
    resident = _pretrain(stored, tmp_path / "r", make_feed(stored, CPU, "resident", None))
    streamed = _pretrain(stored, tmp_path / "s", make_feed(stored, CPU, "streamed", None))
    assert resident.keys() == streamed.keys()
    assert all(torch.equal(resident[k], streamed[k]) for k in resident)


def test_feed_choice_follows_the_budget():
    assert choose_feed("auto", 10, 100)[0] == "resident"
    assert choose_feed("auto", 1000, 100)[0] == "streamed"
    assert "over the resident budget" in choose_feed("auto", 1000, 100)[1]
    assert choose_feed("streamed", 10, 100)[0] == "streamed"
    with pytest.raises(MedsslError, match="trainer.feed=resident.*streamed"):
        choose_feed("resident", 1000, 100)  # never loads everything past the budget
    with pytest.raises(MedsslError, match="trainer.feed must be one of"):
        choose_feed("mmap", 10, 100)


def test_an_error_while_gathering_reaches_the_training_loop(stored):
    feed = StreamedFeed(stored, CPU)
    order = torch.arange(len(stored) + 8)  # indices past the end of the split
    with pytest.raises(IndexError):
        _all_batches(feed, order, 8, first=8)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_cuda_streamed_batches_equal_resident_batches(stored):
    cuda = torch.device("cuda")
    order = torch.randperm(len(stored), generator=torch.Generator().manual_seed(6)).to(cuda)
    resident = _all_batches(ResidentFeed(stored, cuda), order, 16)
    streamed = _all_batches(StreamedFeed(stored, cuda), order, 16)
    assert all(a.is_cuda and b.is_cuda for (a, _), (b, _) in zip(resident, streamed, strict=True))
    for (a, ia), (b, ib) in zip(resident, streamed, strict=True):
        assert torch.equal(ia, ib) and torch.equal(a, b)
