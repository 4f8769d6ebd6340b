"""Fine-tuning: a head on the encoder, both trained on the labelled subset.

The head starts as the linear probe's solution (`probe`: a `LinearProbe` fitted on the frozen
features of the labelled subset, its standardisation folded into the weights), and the
untrained start is scored on val as epoch 0, so the checkpoint kept is never worse on val than
the probe (Kumar et al. 2022, "LP-FT": a random head's gradients distort the features first;
at a hundred imbalanced labels they can collapse the network onto the majority class). For
`head_only_epochs` the encoder is frozen (BatchNorm in eval mode, no gradients) and only the
head learns, at `lr`; then the encoder is unfrozen at `lr * encoder_lr_scale`, and both
learning rates follow a per-step linear warm-up over `warmup_epochs` and a cosine decay to 0
at the last epoch. After every epoch the val `monitor` (AUROC or balanced ACC) decides: the
best encoder and head are kept, and training stops after `patience` epochs without improvement. Test is predicted once,
with the best checkpoint. The loss is cross-entropy (per-label binary cross-entropy), with
`label_smoothing` and, with `class_weight: balanced`, class weights n / (K n_k) of the
labelled subset (per label: positives against negatives).

`head: linear` is one linear layer on the pooled features; `head: mlp` adds a hidden layer of
`mlp_hidden` units beside it, zero-initialised so that it too starts as the probe;
`head: cam_refine` the CAM-refined head on the last feature map (cam_refine.py, CNN backbones
only; it starts at random, with its own unweighted loss). With MC dropout on
(`mc_dropout.samples > 0`) dropout of `mc_dropout.rate` sits before the head.
"""

from __future__ import annotations

import copy
import logging
import math

import numpy as np
import torch
from torch import nn

from medssl.data.model_input import to_model_input, to_unit
from medssl.errors import MedsslError
from medssl.evaluation.calibration import logits_to_probs
from medssl.evaluation.finetune_heads import (
    FineTunedModel,
    LinearHead,
    MLPHead,
    TaskLoss,
    spatial_feature_map,
)
from medssl.evaluation.linear_probe import LinearProbe
from medssl.evaluation.metrics import auroc, label_metrics, predictions
from medssl.evaluation.protocol import EvalInputs, ProtocolOutput
from medssl.losses.class_weight import CLASS_WEIGHTS, balanced_weights
from medssl.models.backbone import feature_dim
from medssl.training.batch_feed import FeedOptions, make_feed
from medssl.training.device import autocast

log = logging.getLogger(__name__)

HEADS = ("linear", "mlp", "cam_refine")
MONITORS = ("auroc", "balanced_acc")


def warmup_cosine(step: int, warmup_steps: int, total_steps: int) -> float:
    """The learning-rate factor of update `step` (0-based) of `total_steps`: linear warm-up
    `(step + 1) / warmup_steps`, then a cosine from 1 towards 0 at `total_steps`."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(total_steps - warmup_steps, 1)
    return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


class FineTune:
    def __init__(
        self,
        epochs: int = 20,
        batch_size: int = 128,
        lr: float = 1e-3,
        encoder_lr_scale: float = 0.1,
        weight_decay: float = 1e-4,
        warmup_epochs: float = 1.0,
        head_only_epochs: int = 2,
        patience: int = 5,
        augmentation: nn.Module | None = None,
        seed: int = 0,
        label_smoothing: float = 0.0,
        class_weight: str | None = "balanced",
        mlp_hidden: int = 256,
        monitor: str = "auroc",
        *,
        head: str,
        probe: LinearProbe | None,
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
        if warmup_epochs < 0:
            raise ValueError(f"warmup_epochs must be non-negative, got {warmup_epochs}")
        if class_weight not in CLASS_WEIGHTS:
            raise MedsslError(
                f"eval.finetune.class_weight must be one of {CLASS_WEIGHTS}, got {class_weight!r}."
            )
        if monitor not in MONITORS:
            raise MedsslError(f"eval.finetune.monitor must be one of {MONITORS}, got {monitor!r}.")
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
        self.warmup_epochs, self.label_smoothing = warmup_epochs, label_smoothing
        self.class_weight, self.mlp_hidden, self.probe = class_weight, mlp_hidden, probe
        self.monitor = monitor
        self.head, self.cam_refine, self.mc_dropout = head, cam_refine, mc_dropout

    def loss(self, inputs: EvalInputs) -> TaskLoss:
        """The training loss, weighted by the labelled subset with `class_weight: balanced`."""
        weight = None
        if self.class_weight == "balanced":
            weight = torch.as_tensor(
                balanced_weights(inputs.task, inputs.labels["train"], inputs.n_outputs)
            )
        return TaskLoss(inputs.task, weight, self.label_smoothing)

    def build_model(self, inputs: EvalInputs) -> FineTunedModel:
        """A copy of the encoder with a fresh head (and dropout before it with MC dropout on)."""
        encoder = copy.deepcopy(inputs.encoder).to(inputs.device)
        if self.head == "cam_refine":
            sample = to_model_input(inputs.images["train"][:2].to(inputs.device), inputs.intensity)
            channels, _, _ = spatial_feature_map(encoder, sample)
            head = self.cam_refine(channels, inputs.n_outputs, inputs.task)
        elif self.head == "mlp":
            head = MLPHead(
                feature_dim(encoder), inputs.n_outputs, self.loss(inputs), self.mlp_hidden
            )
        else:
            head = LinearHead(feature_dim(encoder), inputs.n_outputs, self.loss(inputs))
        dropout = self.mc_dropout.training_dropout if self.mc_dropout is not None else 0.0
        return FineTunedModel(encoder, head, dropout).to(inputs.device)

    def start_from_probe(self, head: nn.Module, inputs: EvalInputs) -> dict[str, float]:
        """Set a linear (or MLP) head to the probe fitted on the frozen features; its C."""
        if self.probe is None:
            return {}
        if not isinstance(head, LinearHead):
            log.info(
                "finetune: the %s head starts at random (no linear probe to start from)", self.head
            )
            return {}
        C, score, linear = self.probe.select(inputs)
        head.start_from(linear.to(next(head.parameters()).device))
        log.info("finetune: head starts from the linear probe (C=%g, val AUROC %.4f)", C, score)
        return {"probe_C": C}

    def val_score(self, model: FineTunedModel, inputs: EvalInputs) -> float:
        """The `monitor` metric on val: AUROC, or balanced ACC (which a network predicting the
        majority class for every image scores 1/K on, however well it ranks)."""
        task, y = inputs.task, inputs.labels["val"]
        probs = logits_to_probs(task, self.logits(model, inputs.images["val"], inputs))
        if self.monitor == "balanced_acc":
            score = label_metrics(task, y, predictions(task, probs), probs.shape[1])[self.monitor]
        else:
            score = auroc(task, y, probs)
        return float(np.nan_to_num(score, nan=-1.0))

    def evaluate(self, inputs: EvalInputs) -> ProtocolOutput:
        device = inputs.device
        model = self.build_model(inputs)
        encoder, head = model.encoder, model.head
        start = self.start_from_probe(head, inputs)
        optimizer = torch.optim.AdamW(
            [
                {"params": head.parameters(), "lr": self.lr},
                {"params": encoder.parameters(), "lr": self.lr * self.encoder_lr_scale},
            ],
            weight_decay=self.weight_decay,
        )
        if self.augmentation is not None:
            self.augmentation.to(device)
        feed = inputs.feed or FeedOptions("resident", None)
        images = make_feed(
            inputs.images["train"], device, feed.mode, feed.resident_budget_gib, "fine-tuning"
        )
        labels = torch.as_tensor(inputs.labels["train"], device=device)
        for group in optimizer.param_groups:
            group["base_lr"] = group["lr"]
        generator = torch.Generator(device=device).manual_seed(self.seed)
        order_generator = torch.Generator().manual_seed(self.seed)
        steps_per_epoch = math.ceil(len(images) / self.batch_size)
        schedule = {
            "step": 0,
            "warmup": round(self.warmup_epochs * steps_per_epoch),
            "total": (self.epochs - self.head_only_epochs) * steps_per_epoch,
        }
        # Epoch 0, the probe's solution, competes with every trained epoch (a random head
        # does not: an untrained head is no classifier to keep).
        best = {"score": -np.inf, "epoch": 0, "state": copy.deepcopy(model.state_dict())}
        if start:
            score = self.val_score(model, inputs)
            log.info("finetune epoch 0 (the probe): val %s %.4f", self.monitor, score)
            best["score"] = start[f"start_val_{self.monitor}"] = score
        stale = 0
        epoch = 0
        for epoch in range(1, self.epochs + 1):
            frozen = epoch <= self.head_only_epochs
            encoder.requires_grad_(not frozen)
            encoder.train(not frozen)  # a frozen encoder keeps its BatchNorm statistics
            head.train()
            model.dropout.train()
            losses = self._epoch(
                model,
                optimizer,
                images,
                labels,
                inputs,
                generator,
                order_generator,
                None if frozen else schedule,
            )
            score = self.val_score(model, inputs)
            log.info(
                "finetune epoch %d (%s): %s, val %s %.4f",
                epoch,
                "head only" if frozen else "all layers",
                ", ".join(f"{k} {v:.4f}" for k, v in losses.items()),
                self.monitor,
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
                f"best_val_{self.monitor}": float(best["score"]),
                **start,
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
        self, model, optimizer, images, labels, inputs, generator, order_generator, schedule
    ) -> dict[str, float]:
        """One pass over the labelled images; with `schedule` (all layers training) each update
        takes its learning rates from `warmup_cosine`, head-only epochs keep `lr`."""
        totals: dict[str, float] = {}
        seen = 0
        order = torch.randperm(len(images), generator=order_generator).to(inputs.device)
        batches = range(math.ceil(len(images) / self.batch_size))
        for x, index in images.batches(order, batches, self.batch_size, lambda idx: idx):
            if len(index) < 2 and model.encoder.training:
                continue  # BatchNorm cannot train on a single image
            x = (
                self.augmentation(to_unit(x, inputs.intensity), generator)[0]
                if self.augmentation is not None
                else to_model_input(x, inputs.intensity)
            )
            with autocast(inputs.device, inputs.precision):
                features = model.features(x)
            # An fp32 head: bf16 logits would tie many images.
            parts = model.head.training_loss(model.dropout(features.float()), labels[index])
            optimizer.zero_grad(set_to_none=True)
            parts["loss"].backward()
            factor = 1.0
            if schedule is not None:
                factor = warmup_cosine(schedule["step"], schedule["warmup"], schedule["total"])
                schedule["step"] += 1
            for group in optimizer.param_groups:
                group["lr"] = group["base_lr"] * factor
            optimizer.step()
            for name, value in parts.items():
                totals[name] = totals.get(name, 0.0) + value.item() * len(index)
            seen += len(index)
        return {name: total / max(seen, 1) for name, total in totals.items()}

    def _features(self, model: FineTunedModel, images: torch.Tensor, inputs: EvalInputs):
        """The head's input for every image, in eval-batch chunks, on the device."""
        for start in range(0, len(images), inputs.batch_size):
            batch = images[start : start + inputs.batch_size].to(inputs.device)
            x = to_model_input(batch, inputs.intensity)
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
