"""Supervised contrastive learning (Khosla et al., NeurIPS 2020) on the labelled subset: the
triplet method's architecture with the SupCon loss (`losses/supcon.py`), for comparison."""

from __future__ import annotations

from medssl.methods.metric_learning import MetricLearningMethod


class SupCon(MetricLearningMethod):
    """`MetricLearningMethod` with a `SupConLoss`: every same-label view is a positive."""
