"""Collapse monitors computed on a sample of training embeddings at the end of each epoch.

- `normalised_std`: the per-dimension standard deviation of L2-normalised embeddings, averaged
  over dimensions and multiplied by sqrt(dim) (SimSiam, Chen & He 2021, sec. 4.1): about 1 for
  embeddings spread isotropically over the sphere, 0 when every image maps to one point.
- `effective_rank`: exp of the entropy of the normalised singular values of the embedding
  matrix (Roy & Vetterli 2007; RankMe, Garrido et al. 2023): how many dimensions the
  embeddings really use, from 1 (complete collapse) to min(n, dim).
A run is flagged as collapsed when, at its last epoch, either falls below its threshold.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def normalised_std(z: torch.Tensor) -> float:
    z = F.normalize(z.float(), dim=1)
    return float(z.std(dim=0).mean() * z.shape[1] ** 0.5)


def effective_rank(z: torch.Tensor, eps: float = 1e-12) -> float:
    s = torch.linalg.svdvals(z.float())
    p = s / s.sum().clamp_min(eps)
    entropy = -(p * torch.log(p.clamp_min(eps))).sum()
    return float(torch.exp(entropy))


class CollapseMonitor:
    """Keeps the last `max_rows` embeddings of an epoch and summarises them; flags a collapse
    below `min_std` or `min_rank` (`trainer.collapse_min_std` and `collapse_min_rank`)."""

    def __init__(self, *, min_std: float, min_rank: float, max_rows: int = 2048) -> None:
        self.max_rows = max_rows
        self.min_std = min_std
        self.min_rank = min_rank
        self.rows: list[torch.Tensor] = []
        self.count = 0

    def add(self, embedding: torch.Tensor) -> None:
        self.rows.append(embedding.detach().float().cpu())
        self.count += len(embedding)
        while self.count - len(self.rows[0]) >= self.max_rows:
            self.count -= len(self.rows.pop(0))

    def state(self) -> torch.Tensor:
        """The embeddings kept so far this epoch (for a checkpoint inside an epoch)."""
        if not self.rows:
            return torch.empty(0)
        return torch.cat(self.rows)[-self.max_rows :]

    def load_state(self, rows: torch.Tensor) -> None:
        self.rows = [rows] if len(rows) else []
        self.count = len(rows)

    def summary(self) -> dict[str, float | bool]:
        if not self.rows:
            return {}
        z = torch.cat(self.rows)[-self.max_rows :]
        self.rows, self.count = [], 0
        if len(z) < 2:
            return {}
        std, rank = normalised_std(z), effective_rank(z)
        return {
            "collapse/std": std,
            "collapse/effective_rank": rank,
            "collapse/collapsed": std < self.min_std or rank < self.min_rank,
        }
