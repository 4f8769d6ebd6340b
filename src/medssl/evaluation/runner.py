"""Evaluate a frozen encoder with each configured protocol; val picks, test is touched once."""

from __future__ import annotations

import logging
import time

import torch
from torch import nn

from medssl.data.splits import DatasetSplits
from medssl.evaluation.features import extract_features
from medssl.evaluation.metrics import classification_metrics

log = logging.getLogger(__name__)


def evaluate_encoder(
    encoder: nn.Module,
    data: DatasetSplits,
    labelled: torch.Tensor,
    protocols: dict,
    *,
    device: torch.device,
    precision: str,
    batch_size: int = 512,
) -> tuple[dict[str, float], dict[str, dict]]:
    """Flat metrics (`test/linear/auroc`, ...) and each protocol's val/test probabilities."""
    started = time.perf_counter()
    features = {
        split: extract_features(encoder, images, device=device, precision=precision, batch_size=batch_size).numpy()
        for split, images in (("train", data.train.images[labelled]), ("val", data.val.images),
                              ("test", data.test.images))
    }
    labels = {"train": data.train.labels[labelled].numpy(), "val": data.val.labels.numpy(),
              "test": data.test.labels.numpy()}
    results: dict[str, float] = {"time/features_s": time.perf_counter() - started}
    outputs: dict[str, dict] = {}
    for name, protocol in protocols.items():
        log.info("Evaluating with the %s protocol on %d labelled images", name, len(labelled))
        started = time.perf_counter()
        out = protocol.fit_predict(
            data.task, (features["train"], labels["train"]), (features["val"], labels["val"]), features["test"]
        )
        for split in ("val", "test"):
            for metric, value in classification_metrics(data.task, labels[split], out[split]).items():
                results[f"{split}/{name}/{metric}"] = value
        for param, value in out.get("params", {}).items():
            results[f"{name}/{param}"] = value
        results[f"time/eval_{name}_s"] = time.perf_counter() - started
        outputs[name] = {"val": out["val"], "test": out["test"], "labels": labels}
        log.info("%s: test ACC %.3f, AUROC %.3f", name, results[f"test/{name}/acc"], results[f"test/{name}/auroc"])
    return results, outputs
