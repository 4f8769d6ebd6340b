"""CAM-refined classification head (`eval.finetune.head=cam_refine`), for CNN feature maps.

After the class-activation-map fine-tuning of the retinal SSL codebase medssl's SiCoVa, triplet
and jigsaw follow, written from its description:

1. A 1x1 convolution turns the feature map `F` `(B, C, h, w)` into per-class maps `M`
   `(B, K, h, w)`; their spatial mean are the CAM logits (GAP then a linear layer, Zhou et al.
   CVPR 2016, computed in the other order).
2. Each map is min-max normalised over space to [0, 1]; the maps are averaged with the CAM's
   (detached) class probabilities into one map per image, which is thresholded at each level
   in `thresholds`. Every mask pools `F` into one region token (the mean feature inside it).
3. Multi-head self-attention over the tokens [global mean of F, region tokens...], a residual
   and LayerNorm, then a linear layer on the mean token give the refined logits: the prediction.
4. Loss = refine_weight * task loss(refined) + cam_weight * task loss(CAM logits)
   + sparsity_weight * mean |normalised M| (L1 on the maps keeps them peaked; on the normalised
   maps it cannot be met by shrinking the maps' scale, which the CAM loss would undo).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from medssl.data.task import Task
from medssl.evaluation.finetune_heads import task_loss


def normalise_maps(maps: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Per image and class, `(m - min) / (max - min)` over the spatial positions."""
    flat = maps.flatten(2)
    low, high = flat.min(dim=2, keepdim=True).values, flat.max(dim=2, keepdim=True).values
    return ((flat - low) / (high - low + eps)).view_as(maps)


class CAMRefineHead(nn.Module):
    """`(B, C, h, w)` feature map -> `(B, n_outputs)` refined logits."""

    spatial = True

    def __init__(
        self,
        channels: int,
        n_outputs: int,
        task: Task,
        *,
        thresholds: Sequence[float],
        attention_heads: int,
        refine_weight: float,
        cam_weight: float,
        sparsity_weight: float,
    ) -> None:
        super().__init__()
        if not thresholds or not all(0.0 <= t <= 1.0 for t in thresholds):
            raise ValueError(f"thresholds must be levels in [0, 1], got {list(thresholds)}")
        if channels % attention_heads:
            raise ValueError(
                f"attention_heads={attention_heads} must divide the feature map's {channels} channels"
            )
        self.task = task
        self.cam = nn.Conv2d(channels, n_outputs, kernel_size=1)
        self.attention = nn.MultiheadAttention(channels, attention_heads, batch_first=True)
        self.norm = nn.LayerNorm(channels)
        self.classifier = nn.Linear(channels, n_outputs)
        self.register_buffer("thresholds", torch.tensor([float(t) for t in thresholds]))
        self.refine_weight, self.cam_weight = refine_weight, cam_weight
        self.sparsity_weight = sparsity_weight

    def outputs(self, feature_map: torch.Tensor) -> dict[str, torch.Tensor]:
        """`logits` (refined), `cam_logits` `(B, K)` and the raw class `maps` `(B, K, h, w)`."""
        maps = self.cam(feature_map)
        cam_logits = maps.mean(dim=(2, 3))
        with torch.no_grad():  # the masks are hard: which regions to look at, not a gradient path
            probs = (
                torch.sigmoid(cam_logits)
                if self.task == Task.MULTILABEL
                else torch.softmax(cam_logits, dim=1)
            )
            weights = probs / probs.sum(dim=1, keepdim=True).clamp_min(1e-12)
            focus = (weights[:, :, None, None] * normalise_maps(maps)).sum(dim=1)  # (B, h, w)
            masks = (focus[:, None] >= self.thresholds.view(1, -1, 1, 1)).to(feature_map.dtype)
        # Mean feature inside each mask: (B, J, C); a threshold of 1 keeps at least the peak.
        regions = torch.einsum("bjhw,bchw->bjc", masks, feature_map) / masks.sum(
            dim=(2, 3)
        ).clamp_min(1.0).unsqueeze(-1)
        tokens = torch.cat([feature_map.mean(dim=(2, 3)).unsqueeze(1), regions], dim=1)
        attended, _ = self.attention(tokens, tokens, tokens, need_weights=False)
        tokens = self.norm(tokens + attended)
        return {
            "logits": self.classifier(tokens.mean(dim=1)),
            "cam_logits": cam_logits,
            "maps": maps,
        }

    def forward(self, feature_map: torch.Tensor) -> torch.Tensor:
        return self.outputs(feature_map)["logits"]

    def class_maps(self, feature_map: torch.Tensor) -> torch.Tensor:
        """`(B, K, h, w)` normalised class maps, the ones the thresholds act on."""
        return normalise_maps(self.cam(feature_map))

    def training_loss(self, feature_map: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.outputs(feature_map)
        refine = task_loss(self.task, out["logits"], y)
        cam = task_loss(self.task, out["cam_logits"], y)
        sparsity = normalise_maps(out["maps"]).abs().mean()
        loss = self.refine_weight * refine + self.cam_weight * cam + self.sparsity_weight * sparsity
        return {"loss": loss, "loss/refine": refine, "loss/cam": cam, "loss/sparsity": sparsity}
