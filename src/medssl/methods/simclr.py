"""SimCLR (Chen et al., ICML 2020): a 2-layer projection head and NT-Xent on two views."""

from __future__ import annotations

from medssl.methods.two_view import TwoViewMethod


class SimCLR(TwoViewMethod):
    projector_layers = 2
