"""Fine-tuning: a head on the encoder, both trained on the labelled subset.

The head starts as the linear probe's solution (`probe`: a `LinearProbe` fitted on the frozen
features of the labelled subset, its standardisation folded into the weights), and the
untrained start is scored on val as epoch 0, so the checkpoint kept is never worse on val than
the probe (Kumar et al. 2022, "LP-FT": a random head's gradients distort the features first;
at a hundred imbalanced labels they can collapse the network onto the majority class). For
`head_only_epochs` the encoder is frozen (BatchNorm in eval mode, no gradients) and only the
head learns, at `lr`; then the encoder is unfrozen at `lr * encoder_lr_scale`, and both
learning rates follow a per-step linear warm-up over `warmup_epochs` and a cosine decay to 0
at the last epoch (`training.optim.warmup_cosine`). After every epoch the val `monitor` (AUROC
or balanced ACC) decides: the best encoder and head are kept, and training stops after
`patience` epochs without improvement (finetune_run.py holds what a run carries from epoch to
epoch; finetune_predict.py predicts with the kept checkpoint). Test is predicted once, with the best checkpoint. The loss is cross-entropy (per-label
binary cross-entropy), with `label_smoothing` and, with `class_weight: balanced`, class weights
n / (K n_k) of the labelled subset (per label: positives against negatives).

`head: linear` is one linear layer on the pooled features; `head: mlp` adds a hidden layer of
`mlp_hidden` units beside it, zero-initialised so that it too starts as the probe;
`head: cam_refine` the CAM-refined head on the last feature map (cam_refine.py, CNN backbones
only; it starts at random, with its own unweighted loss). With MC dropout on
(`mc_dropout.samples > 0`) dropout of `mc_dropout.rate` sits before the head.

`link` shapes the linear head's output: `softmax` (the above), `ordinal` (CORAL's cumulative
link, ordinal.py: one weight vector and K-1 thresholds, started from the ordinal probe, its
loss class-weighted but not smoothed) or `auto`: on graded (ordinal) tasks both are fine-tuned
and the one with the better val quadratic kappa is kept (`finetune/link`,
`finetune/val_kappa_softmax`, `finetune/val_kappa_ordinal`); softmax on other tasks.

Steps run as pretraining's do (finetune_run.py): autocast in the resolved `trainer.precision`,
a gradient scaler for fp16, and `trainer.speed` (channels-last, compile) on the fine-tuned copy.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from medssl.data.model_input import to_model_input
from medssl.data.task import Task
from medssl.errors import MedsslError
from medssl.evaluation.calibration import logits_to_probs
from medssl.evaluation.finetune_heads import (
    FineTunedModel,
    LinearHead,
    MLPHead,
    TaskLoss,
    spatial_feature_map,
)
from medssl.evaluation.finetune_predict import fitted_output, logits
from medssl.evaluation.finetune_run import BestCheckpoint, FineTuneRun
from medssl.evaluation.linear_probe import LinearProbe
from medssl.evaluation.mc_dropout import MCDropout
from medssl.evaluation.metrics import auroc, label_metrics, predictions
from medssl.evaluation.ordinal import OrdinalHead, candidate_links, check_link, pick_link
from medssl.evaluation.protocol import EvalInputs, ProtocolOutput
from medssl.losses.class_weight import CLASS_WEIGHTS, balanced_weights
from medssl.models.backbone import feature_dim
from medssl.training.batch_feed import FeedOptions, make_feed
from medssl.training.device import grad_scaler

log = logging.getLogger(__name__)

HEADS = ("linear", "mlp", "cam_refine")
MONITORS = ("auroc", "balanced_acc")


@dataclass(eq=False, kw_only=True)
class FineTune:
    """Config `eval.finetune`: conf/eval/finetune.yaml sets and explains every field."""

    epochs: int
    batch_size: int
    lr: float
    encoder_lr_scale: float
    weight_decay: float
    warmup_epochs: float
    head_only_epochs: int
    patience: int
    monitor: str
    seed: int
    label_smoothing: float
    class_weight: str | None
    head: str
    mlp_hidden: int
    link: str
    probe: LinearProbe | None
    augmentation: nn.Module | None
    cam_refine: Callable[..., nn.Module] | None  # CAMRefineHead, finished with the feature map
    mc_dropout: MCDropout | None

    def __post_init__(self) -> None:
        check_settings(self)

    def class_weights(self, inputs: EvalInputs) -> torch.Tensor | None:
        """Per-class loss weights of the labelled subset with `class_weight: balanced`."""
        if self.class_weight != "balanced":
            return None
        return torch.as_tensor(
            balanced_weights(inputs.task, inputs.labels["train"], inputs.n_outputs)
        )

    def loss(self, inputs: EvalInputs) -> TaskLoss:
        """The training loss, weighted by the labelled subset with `class_weight: balanced`."""
        return TaskLoss(inputs.task, self.class_weights(inputs), self.label_smoothing)

    def build_model(self, inputs: EvalInputs, link: str = "softmax") -> FineTunedModel:
        """A copy of the encoder with a fresh head (and dropout before it with MC dropout on)."""
        encoder = copy.deepcopy(inputs.encoder).to(inputs.device)
        if link == "ordinal":
            head = OrdinalHead(feature_dim(encoder), inputs.n_outputs, self.class_weights(inputs))
        elif self.head == "cam_refine":
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

    def start_from_probe(
        self, head: nn.Module, inputs: EvalInputs, link: str = "softmax"
    ) -> dict[str, float]:
        """Set a linear (MLP, ordinal) head to the probe of its link fitted on the frozen
        features; its C."""
        if self.probe is None:
            return {}
        if not isinstance(head, LinearHead | OrdinalHead):
            log.info(
                "finetune: the %s head starts at random (no linear probe to start from)", self.head
            )
            return {}
        C, score, linear = self.probe.select(inputs, link)
        head.start_from(linear.to(next(head.parameters()).device))
        log.info("finetune: head starts from the linear probe (C=%g, val AUROC %.4f)", C, score)
        return {"probe_C": C}

    def val_score(self, model: FineTunedModel, inputs: EvalInputs) -> float:
        """The `monitor` metric on val: AUROC, or balanced ACC (which a network predicting the
        majority class for every image scores 1/K on, however well it ranks)."""
        task, y = inputs.task, inputs.labels["val"]
        probs = logits_to_probs(task, logits(model, inputs.images["val"], inputs))
        if self.monitor == "balanced_acc":
            score = label_metrics(task, y, predictions(task, probs), probs.shape[1])[self.monitor]
        else:
            score = auroc(task, y, probs)
        return float(np.nan_to_num(score, nan=-1.0))

    def evaluate(self, inputs: EvalInputs) -> ProtocolOutput:
        """Fine-tune the head of each candidate link; on graded tasks keep the one with the
        better val quadratic kappa and record the choice."""
        links = candidate_links(self.link, inputs.task, "eval.finetune.link")
        if self.head != "linear":  # the ordinal link is a linear head's
            links = ("softmax",)
        outputs = {link: self.evaluate_link(inputs, link) for link in links}
        if inputs.task != Task.ORDINAL:
            return outputs[links[0]]
        link, record = pick_link(inputs.labels["val"], {k: o.val for k, o in outputs.items()})
        log.info("finetune: the %s head, %s", link, record)
        chosen = outputs[link]
        chosen.params.update(record)
        return chosen

    def evaluate_link(self, inputs: EvalInputs, link: str) -> ProtocolOutput:
        """Train on the labelled subset, keep the best val checkpoint, predict with it."""
        model = self.build_model(inputs, link)
        start = self.start_from_probe(model.head, inputs, link)
        run = self.start_run(model, inputs)
        # Epoch 0, the probe's solution, competes with the trained epochs; a random head does not.
        best = BestCheckpoint.untrained(model)
        if start:
            best.score = self.val_score(model, inputs)
            start[f"start_val_{self.monitor}"] = best.score
            log.info("finetune epoch 0 (the probe): val %s %.4f", self.monitor, best.score)
        epochs_run = self.train(run, best, inputs)
        model.load_state_dict(best.state)
        model.encoder.requires_grad_(True)
        model.eval()
        params = {
            "best_epoch": best.epoch,
            "epochs_run": epochs_run,
            f"best_val_{self.monitor}": float(best.score),
            **start,
        }
        return fitted_output(model, inputs, params)

    def start_run(self, model: FineTunedModel, inputs: EvalInputs) -> FineTuneRun:
        """The optimiser (the encoder at `lr * encoder_lr_scale`), the labelled images fed as
        `trainer.feed` says, the seeded generators and the schedule's phase."""
        device = inputs.device
        optimizer = torch.optim.AdamW(
            [
                {"params": model.head.parameters(), "lr": self.lr},
                {"params": model.encoder.parameters(), "lr": self.lr * self.encoder_lr_scale},
            ],
            weight_decay=self.weight_decay,
        )
        if self.augmentation is not None:
            self.augmentation.to(device)
        memory_format = None
        if inputs.speed is not None:  # pretraining's options on the copy: NHWC, compiled
            memory_format = inputs.speed.apply_to(model, model.encoder, device)
        feed = inputs.feed or FeedOptions("resident", None)
        images = make_feed(
            inputs.images["train"], device, feed.mode, feed.resident_budget_gib, "fine-tuning"
        )
        return FineTuneRun(
            model=model,
            optimizer=optimizer,
            images=images,
            labels=torch.as_tensor(inputs.labels["train"], device=device),
            batch_size=self.batch_size,
            augmentation=self.augmentation,
            augment_generator=torch.Generator(device=device).manual_seed(self.seed),
            order_generator=torch.Generator().manual_seed(self.seed),
            warmup_epochs=self.warmup_epochs,
            scheduled_epochs=self.epochs - self.head_only_epochs,
            scaler=grad_scaler(device, inputs.precision),
            memory_format=memory_format,
        )

    def train(self, run: FineTuneRun, best: BestCheckpoint, inputs: EvalInputs) -> int:
        """Head-only epochs, then all layers, each scored on val and offered to `best`, until
        the last epoch or `patience` epochs without improvement; the number of epochs run."""
        epoch = 0
        for epoch in range(1, self.epochs + 1):
            frozen = epoch <= self.head_only_epochs
            run.model.train_phase(encoder_frozen=frozen)
            losses = run.train_epoch(inputs, scheduled=not frozen)
            score = self.val_score(run.model, inputs)
            log.info(
                "finetune epoch %d (%s): %s, val %s %.4f",
                epoch,
                "head only" if frozen else "all layers",
                ", ".join(f"{k} {v:.4f}" for k, v in losses.items()),
                self.monitor,
                score,
            )
            best.offer(run.model, score, epoch)
            if best.stale >= self.patience:
                log.info("finetune: no val improvement for %d epochs, stopping", best.stale)
                break
        return epoch


def check_settings(tune: FineTune) -> None:
    """Refuse settings fine-tuning cannot run with, naming the key."""
    if tune.epochs < 1 or tune.batch_size < 1:
        raise ValueError(
            f"epochs and batch_size must be positive, got {tune.epochs} and {tune.batch_size}"
        )
    if not 0 <= tune.head_only_epochs <= tune.epochs:
        raise ValueError(
            f"head_only_epochs must lie in [0, epochs={tune.epochs}], got {tune.head_only_epochs}"
        )
    if tune.warmup_epochs < 0:
        raise ValueError(f"warmup_epochs must be non-negative, got {tune.warmup_epochs}")
    for key, value, allowed in (
        ("class_weight", tune.class_weight, CLASS_WEIGHTS),
        ("monitor", tune.monitor, MONITORS),
        ("head", tune.head, HEADS),
    ):
        if value not in allowed:
            raise MedsslError(f"eval.finetune.{key} must be one of {allowed}, got {value!r}.")
    check_link(tune.link, "eval.finetune.link")
    if tune.link == "ordinal" and tune.head != "linear":
        raise MedsslError(
            f"eval.finetune.link=ordinal needs head=linear, not {tune.head!r} (or use link=auto)."
        )
    if tune.head == "cam_refine" and tune.cam_refine is None:
        raise MedsslError("eval.finetune.head=cam_refine needs the eval.finetune.cam_refine block.")
