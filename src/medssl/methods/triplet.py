"""Triplet metric learning on the labelled subset: L2-normalised embeddings trained with the
all-valid-triplets loss (`losses/triplet.py`)."""

from __future__ import annotations

from medssl.methods.metric_learning import MetricLearningMethod


class Triplet(MetricLearningMethod):
    """`MetricLearningMethod` with a `TripletLoss`."""
