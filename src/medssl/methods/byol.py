"""BYOL (Grill et al., NeurIPS 2020): an online network (encoder, 2-layer projector, predictor)
regresses the projection of the other view made by a target network, an EMA of the online one
whose rate rises from `base_momentum` to 1 by cosine over training. The loss is symmetrised
(eq. 3) and is `losses/byol.BYOLLoss`."""

from __future__ import annotations

from medssl.methods.online_target import OnlineTargetMethod


class BYOL(OnlineTargetMethod):
    projector_layers = 2
    last_bn = False
