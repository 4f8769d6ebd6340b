"""Projection, expansion and prediction heads shared by the methods."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MLPHead(nn.Sequential):
    """`num_layers` linear layers, BatchNorm + ReLU between them; `(batch, in_dim) -> (batch, out_dim)`.

    `last_bn` adds an affine-free BatchNorm after the output layer (SimCLR v2, MoCo v3, Barlow).
    """

    def __init__(
        self, in_dim: int, hidden_dim: int, out_dim: int, num_layers: int = 2, last_bn: bool = False
    ) -> None:
        if num_layers < 1:
            raise ValueError(f"num_layers must be at least 1, got {num_layers}")
        layers: list[nn.Module] = []
        dims = [in_dim] + [hidden_dim] * (num_layers - 1) + [out_dim]
        for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:])):
            last = i == num_layers - 1
            layers.append(nn.Linear(d_in, d_out, bias=last and not last_bn))
            if not last:
                layers += [nn.BatchNorm1d(d_out), nn.ReLU(inplace=True)]
        if last_bn:
            layers.append(nn.BatchNorm1d(out_dim, affine=False))
        super().__init__(*layers)


class DINOHead(nn.Module):
    """DINO's projection head (Caron et al. 2021, sec. 3 and appendix): an MLP with GELU to a
    `bottleneck_dim` code, L2-normalised, then a linear layer to `out_dim` logits whose weight
    rows are normalised to unit length (weight normalisation with the gain fixed to 1).

    `batch_norm` puts BatchNorm after the hidden layers (the DINO code's `use_bn_in_head`, for
    CNNs): the pooled ReLU features of a CNN share one large positive direction, and without it
    every image gets nearly the same code, the centred teacher is uniform and the loss sits at
    log(out_dim) (measured on a small CNN, PneumoniaMNIST)."""

    def __init__(
        self,
        in_dim: int,
        hidden_dim: int = 2048,
        bottleneck_dim: int = 256,
        out_dim: int = 4096,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        norm = nn.BatchNorm1d if batch_norm else nn.Identity
        self.mlp = nn.Sequential(
            nn.Linear(in_dim, hidden_dim),
            norm(hidden_dim),
            nn.GELU(),
            nn.Linear(hidden_dim, hidden_dim),
            norm(hidden_dim),
            nn.GELU(),
            nn.Linear(hidden_dim, bottleneck_dim),
        )
        self.last = nn.Linear(bottleneck_dim, out_dim, bias=False)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        code = F.normalize(self.mlp(x), dim=-1)
        return F.linear(code, F.normalize(self.last.weight, dim=-1))
