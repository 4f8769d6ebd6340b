"""Projection, expansion and prediction heads shared by the methods."""

from __future__ import annotations

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
