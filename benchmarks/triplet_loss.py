"""Time of the all-valid-triplets loss (forward + backward) against the explicit
`(batch, batch, batch)` boolean-mask computation it replaces, at SSL batch sizes.

    python benchmarks/triplet_loss.py

Both give the same value and gradient (tests/test_losses_supervised.py); this prints how much
faster the per-anchor sorted form is, measured in this run.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from medssl.losses.triplet import TripletLoss, valid_triplets


def explicit_mask_loss(z: torch.Tensor, labels: torch.Tensor, margin: float) -> torch.Tensor:
    z = F.normalize(z, dim=1)
    d = (z[:, None, :] - z[None, :, :]).pow(2).sum(dim=-1).clamp_min(1e-12).sqrt()
    violation = F.relu(d[:, :, None] - d[:, None, :] + margin)
    return violation[valid_triplets(labels)].mean()


def seconds(fn, z: torch.Tensor, labels: torch.Tensor, repeats: int) -> float:
    times = []
    for _ in range(repeats + 1):  # the first is a warm-up
        z.grad = None
        started = time.perf_counter()
        fn(z, labels).backward()
        times.append(time.perf_counter() - started)
    return statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, nargs="*", default=[128, 256, 512])
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    ours = TripletLoss(margin=0.2, gamma=1.0, gather=False)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, dim {args.dim}, 2 classes"
    )
    print(f"{'batch':>6}{'explicit mask s':>17}{'ours s':>10}{'speed-up':>10}{'|diff|':>10}")
    for batch in args.batches:
        g = torch.Generator().manual_seed(batch)
        z = torch.randn(batch, args.dim, generator=g).requires_grad_(True)
        labels = torch.randint(0, 2, (batch,), generator=g)
        reference = seconds(lambda z, y: explicit_mask_loss(z, y, 0.2), z, labels, args.repeats)
        fast = seconds(ours, z, labels, args.repeats)
        diff = abs(ours(z, labels).item() - explicit_mask_loss(z, labels, 0.2).item())
        print(f"{batch:>6}{reference:>17.4f}{fast:>10.4f}{reference / fast:>9.1f}x{diff:>10.1e}")


if __name__ == "__main__":
    main()
