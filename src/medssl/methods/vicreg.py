"""VICReg (Bardes et al., ICLR 2022): a 3-layer expander and the VICReg loss on two views,
logged as `loss/invariance`, `loss/variance` and `loss/covariance`."""

from __future__ import annotations

from medssl.methods.two_view import TwoViewMethod


class VICReg(TwoViewMethod):
    projector_layers = 3  # the paper's expander
