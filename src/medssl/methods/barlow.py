"""Barlow Twins (Zbontar et al., ICML 2021): a 3-layer projector and the redundancy-reduction
loss on two views, logged as `loss/invariance` and `loss/redundancy`."""

from __future__ import annotations

from medssl.methods.two_view import TwoViewMethod


class BarlowTwins(TwoViewMethod):
    projector_layers = 3  # the paper's projector
