"""How the encoder improves with pretraining length (`trainer.eval_every`): cheap probes on val.

Every `trainer.eval_every` epochs, and after the last, the frozen encoder is scored as the `knn` and
`linear` protocols score it (the same classes and settings, fitted on the run's labelled subset
of the train split) and their val AUROC, ACC and balanced ACC go into that epoch's row of
train_log.jsonl (`eval/knn/auroc`, ...), from which `figures/pretraining_curve.png` is drawn.
The test split is never read. The linear probe's C is picked on val, as in its protocol, so
these val numbers lean optimistic as the protocol's do; they are for comparing epochs.

Scoring draws no random number the run sees (the global generators are saved and restored) and
leaves every module in the train/eval mode it found, so a run trains the same encoder with or
without its curve. The rows ride in the checkpoint with the rest of the epoch log: a resumed
run neither loses nor repeats one.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch
from matplotlib.ticker import MaxNLocator
from torch import nn

from medssl.data.intensity import IntensityMapping
from medssl.evaluation.calibration import logits_to_probs
from medssl.evaluation.metrics import classification_metrics
from medssl.evaluation.protocol import EvalInputs
from medssl.plots import plt, save_figure
from medssl.training.train_state import global_random_states, restore_global_random_states

log = logging.getLogger(__name__)

FIGURE = Path("figures") / "pretraining_curve.png"
METRICS = ("auroc", "acc", "balanced_acc")


class PretrainingCurve:
    """Scores an encoder on val with `probes` (name -> protocol with `evaluate(inputs)`: the
    `knn` and `linear` protocols) fitted on the labelled training images."""

    def __init__(
        self,
        *,
        probes: dict[str, object],
        train_images: torch.Tensor,
        train_labels: torch.Tensor,
        val_images: torch.Tensor,
        val_labels: torch.Tensor,
        task: str,
        num_classes: int,
        batch_size: int = 512,
        intensity: IntensityMapping | None = None,
    ) -> None:
        self.probes, self.intensity = probes, intensity
        self.images = {"train": train_images, "val": val_images, "test": val_images}
        self.labels = {
            "train": train_labels.numpy(),
            "val": val_labels.numpy(),
            "test": val_labels.numpy(),
        }
        self.task, self.num_classes, self.batch_size = task, num_classes, batch_size

    def score(self, method: nn.Module, device: torch.device, precision: str) -> dict:
        """The epoch row's `eval/<probe>/<metric>` entries for `method.encoder` as it is now."""
        started = time.perf_counter()
        random_states = global_random_states()
        modes = {module: module.training for module in method.modules()}
        try:
            inputs = EvalInputs(
                task=self.task,
                num_classes=self.num_classes,
                encoder=method.encoder,
                images=self.images,
                labels=self.labels,
                device=device,
                precision=precision,
                batch_size=self.batch_size,
                intensity=self.intensity,
            )
            # Val stands in for test, with its features: the curve reads no test image.
            inputs._features["test"] = inputs.features("val")
            record = {}
            for name, probe in self.probes.items():
                logits = probe.evaluate(inputs).val
                metrics = classification_metrics(
                    self.task, self.labels["val"], logits_to_probs(self.task, logits), logits=logits
                )
                record.update({f"eval/{name}/{m}": metrics[m] for m in METRICS})
        finally:
            restore_global_random_states(random_states)
            for module, mode in modes.items():
                module.training = mode
        record["eval/seconds"] = time.perf_counter() - started
        return record

    def draw(self, history: list[dict], run_dir: Path) -> Path | None:
        """`run_dir/figures/pretraining_curve.png` from the epoch log; None before any score."""
        return draw_pretraining_curve(
            history, Path(run_dir) / FIGURE, list(self.probes), len(self.labels["train"])
        )


def draw_pretraining_curve(
    history: list[dict], path: Path, probes: list[str], n_labelled: int
) -> Path | None:
    """Val AUROC of each probe against the epoch; None where no epoch was scored."""
    lines = {}
    for name in probes:
        points = [
            (row["epoch"], row[f"eval/{name}/auroc"])
            for row in history
            if row.get(f"eval/{name}/auroc") is not None
        ]
        if points:
            lines[name] = np.array(points, dtype=float)
    if not lines:
        return None
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for name, points in lines.items():
        ax.plot(points[:, 0], points[:, 1], marker="o", label=name)
    ax.set_xlabel("pretraining epoch")
    ax.set_ylabel("val AUROC")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(f"Val AUROC during pretraining (probes fitted on {n_labelled} labelled images)")
    ax.grid(alpha=0.3)
    ax.legend(title="probe")
    return save_figure(fig, path)
