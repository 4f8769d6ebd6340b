"""SiCoVa, proposed for retinal images: VICReg's 3-layer expander trained with VICReg plus a
cross-view correlation term (`losses/sicova.py`), logged as VICReg's three parts and
`loss/correlation`."""

from __future__ import annotations

from medssl.methods.two_view import TwoViewMethod


class SiCoVa(TwoViewMethod):
    projector_layers = 3  # VICReg's expander, so the two compare
