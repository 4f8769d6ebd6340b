"""Fine-tuning: a linear head on the encoder, both trained on the labelled subset.

For `head_only_epochs` the encoder is frozen (BatchNorm in eval mode, no gradients) and only the
head learns; then the encoder is unfrozen at `lr * encoder_lr_scale`. After every epoch the val
AUROC decides: the best encoder and head are kept, and training stops after `patience` epochs
without improvement. Test is predicted once, with the best checkpoint.
"""

from __future__ import annotations

import copy
import logging

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from medssl.augment.pipeline import to_model_input
from medssl.evaluation.calibration import logits_to_probs
from medssl.evaluation.metrics import auroc
from medssl.evaluation.protocol import EvalInputs, ProtocolOutput
from medssl.training.device import autocast

log = logging.getLogger(__name__)


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
    ) -> None:
        if epochs < 1 or batch_size < 1:
            raise ValueError(
                f"epochs and batch_size must be positive, got {epochs} and {batch_size}"
            )
        if not 0 <= head_only_epochs <= epochs:
            raise ValueError(
                f"head_only_epochs must lie in [0, epochs={epochs}], got {head_only_epochs}"
            )
        self.epochs, self.batch_size, self.lr = epochs, batch_size, lr
        self.encoder_lr_scale, self.weight_decay = encoder_lr_scale, weight_decay
        self.head_only_epochs, self.patience = head_only_epochs, patience
        self.augmentation, self.seed = augmentation, seed

    def evaluate(self, inputs: EvalInputs) -> ProtocolOutput:
        device = inputs.device
        encoder = copy.deepcopy(inputs.encoder).to(device)
        head = nn.Linear(int(encoder.num_features), inputs.n_outputs).to(device)
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
            loss = self._epoch(
                encoder, head, optimizer, images, labels, inputs, generator, order_generator
            )
            val_logits = self._logits(encoder, head, inputs.images["val"], inputs)
            score = np.nan_to_num(
                auroc(inputs.task, inputs.labels["val"], logits_to_probs(inputs.task, val_logits)),
                nan=-1.0,
            )
            log.info(
                "finetune epoch %d (%s): loss %.4f, val AUROC %.4f",
                epoch,
                "head only" if frozen else "all layers",
                loss,
                score,
            )
            if score > best["score"]:
                best = {
                    "score": score,
                    "epoch": epoch,
                    "state": (
                        copy.deepcopy(encoder.state_dict()),
                        copy.deepcopy(head.state_dict()),
                    ),
                }
                stale = 0
            else:
                stale += 1
                if stale >= self.patience:
                    log.info("finetune: no val improvement for %d epochs, stopping", stale)
                    break
        encoder.load_state_dict(best["state"][0])
        head.load_state_dict(best["state"][1])
        encoder.requires_grad_(True)
        model = nn.Sequential(encoder, head).eval()
        return ProtocolOutput(
            val=self._logits(encoder, head, inputs.images["val"], inputs),
            test=self._logits(encoder, head, inputs.images["test"], inputs),
            params={
                "best_epoch": best["epoch"],
                "epochs_run": epoch,
                "best_val_auroc": float(best["score"]),
            },
            model=model,
        )

    def _epoch(
        self, encoder, head, optimizer, images, labels, inputs, generator, order_generator
    ) -> float:
        total, seen = 0.0, 0
        order = torch.randperm(len(images), generator=order_generator).to(images.device)
        for start in range(0, len(images), self.batch_size):
            index = order[start : start + self.batch_size]
            if len(index) < 2 and encoder.training:
                continue  # BatchNorm cannot train on a single image
            x = images[index]
            x = (
                self.augmentation(x, generator)[0]
                if self.augmentation is not None
                else to_model_input(x)
            )
            with autocast(inputs.device, inputs.precision):
                features = encoder(x)
            logits = head(features.float())  # an fp32 head: bf16 logits would tie many images
            loss = self._loss(inputs.task, logits, labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total, seen = total + loss.item() * len(index), seen + len(index)
        return total / max(seen, 1)

    @staticmethod
    def _loss(task: str, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if task == "multilabel":
            return F.binary_cross_entropy_with_logits(logits, y.float())
        return F.cross_entropy(logits, y)

    @torch.no_grad()
    def _logits(self, encoder, head, images: torch.Tensor, inputs: EvalInputs) -> np.ndarray:
        encoder.eval()
        head.eval()
        chunks = []
        for start in range(0, len(images), inputs.batch_size):
            x = to_model_input(images[start : start + inputs.batch_size].to(inputs.device))
            with autocast(inputs.device, inputs.precision):
                features = encoder(x)
            chunks.append(head(features.float()).cpu())
        return torch.cat(chunks).double().numpy()
