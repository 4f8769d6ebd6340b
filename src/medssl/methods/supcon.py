"""Supervised contrastive learning (Khosla et al., NeurIPS 2020) on the labelled subset: the
triplet method's architecture with the SupCon loss, for comparison with it."""

from __future__ import annotations

from medssl.methods.triplet import Triplet


class SupCon(Triplet):
    """Same forward as `Triplet`; every same-label view in the batch is a positive."""
