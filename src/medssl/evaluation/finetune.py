"""Fine-tuning: a head on the encoder, both trained on the labelled subset.

For `head_only_epochs` the encoder is frozen (BatchNorm in eval mode, no gradients) and only the
head learns; then the encoder is unfrozen at `lr * encoder_lr_scale`. After every epoch the val
AUROC decides: the best encoder and head are kept, and training stops after `patience` epochs
without improvement. Test is predicted once, with the best checkpoint.

`head: linear` is one linear layer on the pooled features; `head: cam_refine` the CAM-refined
head on the last feature map (cam_refine.py, CNN backbones only). With MC dropout on
(`mc_dropout.samples > 0`) dropout of `mc_dropout.rate` sits before the head.
"""

from __future__ import annotations

import copy
import logging

import numpy as np
import torch
from torch import nn

from medssl.data.model_input import to_model_input
from medssl.errors import MedsslError
from medssl.evaluation.calibration import logits_to_probs
from medssl.evaluation.finetune_heads import FineTunedModel, LinearHead, spatial_feature_map
from medssl.evaluation.metrics import auroc
from medssl.evaluation.protocol import EvalInputs, ProtocolOutput
from medssl.training.device import autocast

log = logging.getLogger(__name__)

HEADS = ("linear", "cam_refine")


class FineTune:
    def __init__(
        self,
        epochs: int = 20,
        batch_size: int = 128,
        lr: float = 1e-3,
        encoder_lr_scale: float = 0.1,
        weight_decay: float = 1e-4,
        head_only_epochs: int = 1,
        patience: int = 5,
        augmentation: nn.Module | None = None,
        seed: int = 0,
        *,
        head: str,
        cam_refine=None,
        mc_dropout=None,
    ) -> None:
        if epochs < 1 or batch_size < 1:
            raise ValueError(
                f"epochs and batch_size must be positive, got {epochs} and {batch_size}"
            )
        if not 0 <= head_only_epochs <= epochs:
            raise ValueError(
                f"head_only_epochs must lie in [0, epochs={epochs}], got {head_only_epochs}"
            )
        if head not in HEADS:
            raise MedsslError(f"eval.finetune.head must be one of {HEADS}, got {head!r}.")
        if head == "cam_refine" and cam_refine is None:
            raise MedsslError(
                "eval.finetune.head=cam_refine needs the eval.finetune.cam_refine block."
            )
        self.epochs, self.batch_size, self.lr = epochs, batch_size, lr
        self.encoder_lr_scale, self.weight_decay = encoder_lr_scale, weight_decay
        self.head_only_epochs, self.patience = head_only_epochs, patience
        self.augmentation, self.seed = augmentation, seed
        self.head, self.cam_refine, self.mc_dropout = head, cam_refine, mc_dropout

    def build_model(self, inputs: EvalInputs) -> FineTunedModel:
        """A copy of the encoder with a fresh head (and dropout before it with MC dropout on)."""
        encoder = copy.deepcopy(inputs.encoder).to(inputs.device)
        if self.head == "cam_refine":
            sample = to_model_input(inputs.images["train"][:2].to(inputs.device))
            channels, _, _ = spatial_feature_map(encoder, sample)
            head = self.cam_refine(channels, inputs.n_outputs, inputs.task)
        else:
            head = LinearHead(int(encoder.num_features), inputs.n_outputs, inputs.task)
        dropout = self.mc_dropout.training_dropout if self.mc_dropout is not None else 0.0
        return FineTunedModel(encoder, head, dropout).to(inputs.device)

    def evaluate(self, inputs: EvalInputs) -> ProtocolOutput:
        device = inputs.device
        model = self.build_model(inputs)
        encoder, head = model.encoder, model.head
        optimizer = torch.optim.AdamW(
            [
                {"params": head.parameters(), "lr": self.lr},
                {"params": encoder.parameters(), "lr": self.lr * self.encoder_lr_scale},
            ],
            weight_decay=self.weight_decay,
        )
        if self.augmentation is not None:
            self.augmentation.to(device)
        images = inputs.images["train"].to(device)
        labels = torch.as_tensor(inputs.labels["train"], device=device)
        generator = torch.Generator(device=device).manual_seed(self.seed)
        order_generator = torch.Generator().manual_seed(self.seed)
        best = {"score": -np.inf, "epoch": 0, "state": None}
        stale = 0
        epoch = 0
        for epoch in range(1, self.epochs + 1):
            frozen = epoch <= self.head_only_epochs
            encoder.requires_grad_(not frozen)
            encoder.train(not frozen)  # a frozen encoder keeps its BatchNorm statistics
            head.train()
            model.dropout.train()
            losses = self._epoch(
                model, optimizer, images, labels, inputs, generator, order_generator
            )
            val_logits = self.logits(model, inputs.images["val"], inputs)
            score = np.nan_to_num(
                auroc(inputs.task, inputs.labels["val"], logits_to_probs(inputs.task, val_logits)),
                nan=-1.0,
            )
            log.info(
                "finetune epoch %d (%s): %s, val AUROC %.4f",
                epoch,
                "head only" if frozen else "all layers",
                ", ".join(f"{k} {v:.4f}" for k, v in losses.items()),
                score,
            )
            if score > best["score"]:
                best = {"score": score, "epoch": epoch, "state": copy.deepcopy(model.state_dict())}
                stale = 0
            else:
                stale += 1
                if stale >= self.patience:
                    log.info("finetune: no val improvement for %d epochs, stopping", stale)
                    break
        model.load_state_dict(best["state"])
        encoder.requires_grad_(True)
        model.eval()
        return ProtocolOutput(
            val=self.logits(model, inputs.images["val"], inputs),
            test=self.logits(model, inputs.images["test"], inputs),
            predict=lambda x: self.logits(model, x, inputs),
            params={
                "best_epoch": best["epoch"],
                "epochs_run": epoch,
                "best_val_auroc": float(best["score"]),
            },
            model=model,
            sample_predict=(
                (lambda x, samples, seed: self.sample_logits(model, x, inputs, samples, seed))
                if model.dropout.p > 0
                else None
            ),
            class_maps=(
                (lambda x: self.class_maps(model, x, inputs))
                if hasattr(model.head, "class_maps")
                else None
            ),
        )

    def _epoch(
        self, model, optimizer, images, labels, inputs, generator, order_generator
    ) -> dict[str, float]:
        totals: dict[str, float] = {}
        seen = 0
        order = torch.randperm(len(images), generator=order_generator).to(images.device)
        for start in range(0, len(images), self.batch_size):
            index = order[start : start + self.batch_size]
            if len(index) < 2 and model.encoder.training:
                continue  # BatchNorm cannot train on a single image
            x = images[index]
            x = (
                self.augmentation(x, generator)[0]
                if self.augmentation is not None
                else to_model_input(x)
            )
            with autocast(inputs.device, inputs.precision):
                features = model.features(x)
            # An fp32 head: bf16 logits would tie many images.
            parts = model.head.training_loss(model.dropout(features.float()), labels[index])
            optimizer.zero_grad(set_to_none=True)
            parts["loss"].backward()
            optimizer.step()
            for name, value in parts.items():
                totals[name] = totals.get(name, 0.0) + value.item() * len(index)
            seen += len(index)
        return {name: total / max(seen, 1) for name, total in totals.items()}

    def _features(self, model: FineTunedModel, images: torch.Tensor, inputs: EvalInputs):
        """The head's input for every image, in eval-batch chunks, on the device."""
        for start in range(0, len(images), inputs.batch_size):
            x = to_model_input(images[start : start + inputs.batch_size].to(inputs.device))
            with autocast(inputs.device, inputs.precision):
                features = model.features(x)
            yield features.float()  # outside autocast: the head runs in fp32

    @torch.no_grad()
    def logits(self, model: FineTunedModel, images: torch.Tensor, inputs: EvalInputs) -> np.ndarray:
        model.eval()
        chunks = [model.head(f).cpu() for f in self._features(model, images, inputs)]
        return torch.cat(chunks).double().numpy()

    @torch.no_grad()
    def sample_logits(
        self, model: FineTunedModel, images, inputs: EvalInputs, samples: int, seed: int
    ) -> np.ndarray:
        """`(samples, N, K)` logits, dropout on: the encoder runs once, the head `samples` times."""
        model.mc_mode()
        devices = [inputs.device] if inputs.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):  # reproducible masks, global RNG untouched
            torch.manual_seed(seed)
            chunks = [
                torch.stack([model.head(model.dropout(f)) for _ in range(samples)]).cpu()
                for f in self._features(model, images, inputs)
            ]
        model.eval()
        return torch.cat(chunks, dim=1).double().numpy()

    @torch.no_grad()
    def class_maps(self, model: FineTunedModel, images, inputs: EvalInputs) -> np.ndarray:
        model.eval()
        chunks = [model.head.class_maps(f).cpu() for f in self._features(model, images, inputs)]
        return torch.cat(chunks).numpy()
