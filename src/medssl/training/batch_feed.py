"""How each step's images reach the device: `trainer.feed: auto | resident | streamed`.

*Resident*: the split sits on the device (on a CPU: in the process's memory) and a batch is an
index into it, as fast as it gets, while it fits `trainer.resident_budget_gib`. *Streamed*:
the split stays in the memory-mapped store; a background thread gathers each step's images
(indices sorted, for locality) into pinned memory and the copy to the GPU runs on a side stream
while the previous step computes. Both give the same batch for the same indices, bit for bit,
so the seed, resume and the encoder cache do not depend on the feed. Under torchrun each
process gathers only its own share of each batch, and the page cache holds one copy per node.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from medssl.data.indexed_images import IndexedImages
from medssl.errors import MedsslError
from medssl.host_memory import available_ram_bytes

log = logging.getLogger(__name__)

FEEDS = ("auto", "resident", "streamed")
# With no budget set, resident data may take this share of the GPU's memory or of free RAM.
DEFAULT_BUDGET_SHARE = 0.25


def resident_budget_bytes(budget_gib: float | None, device: torch.device) -> int:
    """`trainer.resident_budget_gib`, or by default a quarter of the GPU's memory (CUDA) or
    of the RAM available now (CPU)."""
    if budget_gib is not None:
        if budget_gib < 0:
            raise MedsslError(
                f"trainer.resident_budget_gib must be 0 or more (or null), got {budget_gib}."
            )
        return int(budget_gib * 2**30)
    if device.type == "cuda":
        total = torch.cuda.get_device_properties(device).total_memory
    else:
        total = available_ram_bytes()
    return int(total * DEFAULT_BUDGET_SHARE)


def choose_feed(feed: str, nbytes: int, budget: int) -> tuple[str, str]:
    """The feed to use for a split of `nbytes`, and why (for the log)."""
    size, room = f"{nbytes / 2**30:.2f} GiB", f"{budget / 2**30:.2f} GiB"
    if feed not in FEEDS:
        raise MedsslError(f"trainer.feed must be one of {', '.join(FEEDS)}, got {feed!r}.")
    if feed == "resident":
        if nbytes > budget:
            raise MedsslError(
                f"trainer.feed=resident: the {size} training split is over the resident budget "
                f"of {room} (trainer.resident_budget_gib); use trainer.feed=streamed (or auto), "
                f"or raise the budget."
            )
        return "resident", f"trainer.feed=resident ({size}, budget {room})"
    if feed == "streamed":
        return "streamed", f"trainer.feed=streamed ({size})"
    if nbytes <= budget:
        return "resident", f"the {size} split fits the resident budget of {room}"
    return "streamed", f"the {size} split is over the resident budget of {room}"


class ResidentFeed:
    """The whole split on the device; a batch is `images[idx]`."""

    mode = "resident"

    def __init__(self, images: torch.Tensor | IndexedImages, device: torch.device) -> None:
        if isinstance(images, IndexedImages):
            self.images = images.materialize().to(device)
        else:  # on a CPU `.to` keeps a memory-mapped tensor as it is; resident means in memory
            self.images = images.to(device) if device.type != "cpu" else images.clone()
        self.device = device

    def __len__(self) -> int:
        return len(self.images)

    def batches(
        self, order: torch.Tensor, micro: range, batch: int, shard: Callable
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """`(images, idx)` of the micro-batches `micro` of the epoch's `order` (batch `k` is
        `order[k * batch : (k + 1) * batch]`); `idx` is this process's share, on the device."""
        for k in micro:
            idx = shard(order[k * batch : (k + 1) * batch])
            yield self.images[idx], idx


class StreamedFeed:
    """The split stays where it is (the memory-mapped store); each batch is gathered on a
    background thread, `prefetch` batches ahead, and copied to the device asynchronously."""

    mode = "streamed"

    def __init__(
        self, images: torch.Tensor | IndexedImages, device: torch.device, prefetch: int = 3
    ) -> None:
        self.length, self.device, self.prefetch = len(images), device, prefetch
        # Gathered with numpy, single-threaded: an OpenMP team on this thread would contend
        # with the model's own for the cores (and wait at its barrier when they are busy).
        base, self.rows = (
            (images.images, images.indices) if isinstance(images, IndexedImages) else (images, None)
        )
        self.array = base.numpy()
        self.dtype = base.dtype
        self.pin = device.type == "cuda"
        self.copy_stream = torch.cuda.Stream(device) if self.pin else None

    def __len__(self) -> int:
        return self.length

    def gather(self, idx: torch.Tensor) -> torch.Tensor:
        """`images[idx]` read in sorted index order (sequential pages), returned in `idx`'s."""
        ordered, position = idx.sort()
        rows = ordered if self.rows is None else self.rows[ordered]
        block = np.take(self.array, rows.numpy(), axis=0)
        out = torch.empty(block.shape, dtype=self.dtype, pin_memory=self.pin)
        out.numpy()[position.numpy()] = block
        return out

    def batches(
        self, order: torch.Tensor, micro: range, batch: int, shard: Callable
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """As `ResidentFeed.batches`, gathered ahead on a thread."""
        order_cpu = order.cpu()
        shares = (shard(order_cpu[k * batch : (k + 1) * batch]) for k in micro)
        with _Prefetcher(shares, self.gather, self.prefetch) as ready:
            pending = self._to_device(next(ready, None))
            while pending is not None:
                upcoming = self._to_device(next(ready, None))  # its copy overlaps this step
                yield self._wait(pending)
                pending = upcoming

    def _to_device(self, item):
        if item is None:
            return None
        images, idx = item
        if self.copy_stream is None:
            return images.to(self.device), idx.to(self.device)
        with torch.cuda.stream(self.copy_stream):
            return (
                images.to(self.device, non_blocking=True),
                idx.to(self.device, non_blocking=True),
            )

    def _wait(self, item):
        if self.copy_stream is not None:
            current = torch.cuda.current_stream(self.device)
            current.wait_stream(self.copy_stream)
            for tensor in item:  # the caching allocator must not reuse them before `current`
                tensor.record_stream(current)
        return item


class _Prefetcher:
    """Runs `gather(idx)` for each of `shares` on a thread, at most `depth` ahead; iterate it
    for `(images, idx)`. An error on the thread is raised where the result is taken."""

    _DONE = object()

    def __init__(self, shares, gather, depth: int) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._work, args=(shares, gather), name="medssl-feed", daemon=True
        )

    def _work(self, shares, gather) -> None:
        try:
            for idx in shares:
                if self._stop.is_set():
                    return
                self._put((gather(idx), idx))
        except BaseException as error:  # handed to the consumer, which raises it
            self._put(error)
        self._put(self._DONE)

    def _put(self, item) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(queue.Full):
                self._queue.put(item, timeout=0.1)
                return

    def __enter__(self):
        self._thread.start()
        return self

    def __iter__(self):
        return self

    def __next__(self):
        item = self._queue.get()
        if item is self._DONE:
            raise StopIteration
        if isinstance(item, BaseException):
            raise item
        return item

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


@dataclass(frozen=True)
class FeedOptions:
    """`trainer.feed` and `trainer.resident_budget_gib`, for fine-tuning as for pretraining."""

    mode: str
    resident_budget_gib: float | None


def make_feed(
    images: torch.Tensor | IndexedImages,
    device: torch.device,
    feed: str,
    budget_gib: float | None,
    what: str = "pretraining",
) -> ResidentFeed | StreamedFeed:
    """The feed `trainer.feed` asks for (auto: by size against the budget), logged with why."""
    nbytes = images.numel() * images.element_size()
    mode, reason = choose_feed(feed, nbytes, resident_budget_bytes(budget_gib, device))
    log.info("Feeding %s batches %s: %s", what, mode, reason)
    return ResidentFeed(images, device) if mode == "resident" else StreamedFeed(images, device)
