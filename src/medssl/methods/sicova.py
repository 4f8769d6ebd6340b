"""SiCoVa: VICReg's architecture (backbone + expander) trained with VICReg plus a cross-view
correlation term (`losses/sicova.py`), proposed for retinal images."""

from __future__ import annotations

from medssl.methods.vicreg import VICReg


class SiCoVa(VICReg):
    """Same forward as VICReg; the loss adds `loss/correlation` to the three VICReg parts."""
