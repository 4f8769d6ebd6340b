"""Evaluate an encoder with each configured protocol; val picks, test is touched once.

`evaluate_encoder` runs the protocols and analyses that build.py makes from the `eval` config,
writes figures under `run_dir/figures/` and returns flat metrics. `evaluate_as_configured`
builds them from a run config and runs them.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

import torch
from torch import nn

from medssl.components import build_node
from medssl.data.indexed_images import IndexedImages
from medssl.data.prepare import prepare_dataset
from medssl.data.splits import DatasetSplits
from medssl.data.task import Task
from medssl.evaluation.analyses import NO_ANALYSES, Analyses, run_analyses, spread_over_classes
from medssl.evaluation.build import build_evaluation
from medssl.evaluation.feature_cache import FEATURES, FeatureCache, encoder_material
from medssl.evaluation.output_options import EvalOutputOptions
from medssl.evaluation.protocol import EvalInputs, EvaluationProtocol, ProtocolOutput
from medssl.evaluation.protocol_figures import draw_protocol_figures
from medssl.evaluation.protocol_scores import score_protocol
from medssl.evaluation.representations import cam_figure, embedding_figures
from medssl.evaluation.shift import check_shift_dataset
from medssl.training.batch_feed import FeedOptions
from medssl.training.speed import SpeedOptions

log = logging.getLogger(__name__)


def evaluate_as_configured(
    cfg,
    encoder: nn.Module,
    data: DatasetSplits,
    labelled: torch.Tensor,
    *,
    run_dir: Path,
    device: torch.device,
    precision: str,
    augmentation: nn.Module | None,
    head: dict | None = None,
    cache_dir: Path | None = None,
) -> dict[str, float]:
    """`evaluate_encoder` with the protocols, outputs and batch size a run config names
    (`eval`, `eval_outputs`, `trainer.eval_batch_size`): what train.py and medssl.cli.evaluate run.
    `head`: {"head": module, "head_info": {...}} for the classifier protocol, or empty.
    `cache_dir`: the encoder cache's folder; the frozen features are kept in its `features/`
    (`feature_cache`), so the other jobs of a label-fraction grid read them."""
    protocols, options, analyses = build_evaluation(cfg.eval, cfg.eval_outputs)
    return evaluate_encoder(
        encoder,
        data,
        labelled,
        protocols,
        options=options,
        run_dir=run_dir,
        device=device,
        precision=precision,
        batch_size=cfg.trainer.eval_batch_size,
        analyses=analyses,
        augmentation=augmentation,
        feed=FeedOptions(cfg.trainer.feed, cfg.trainer.resident_budget_gib),
        speed=build_node(cfg.trainer.speed, "trainer.speed"),
        feature_cache=FeatureCache(cache_dir / FEATURES) if cache_dir is not None else None,
        **(head or {}),
    )


def evaluate_encoder(
    encoder: nn.Module,
    data: DatasetSplits,
    labelled: torch.Tensor,
    protocols: dict[str, EvaluationProtocol],
    *,
    options: EvalOutputOptions,
    run_dir: Path,
    device: torch.device,
    precision: str,
    batch_size: int = 512,
    analyses: Analyses | None = None,
    augmentation: nn.Module | None = None,
    head: nn.Module | None = None,
    head_info: dict | None = None,
    feed: FeedOptions | None = None,
    speed: SpeedOptions | None = None,
    feature_cache: FeatureCache | None = None,
) -> dict[str, float]:
    """Flat metrics (`test/linear/auroc`, ...) for every protocol; figures in `run_dir/figures`.
    `feature_cache`: where the frozen features of whole splits are kept across jobs.

    `augmentation`: the pipeline whose stored-image transforms (CLAHE) `data` went through, so
    that a shift dataset gets them too. `head`: the classifier head the method trained on
    these labels (the `classifier` protocol scores it), with `head_info` about it."""
    analyses = with_prepared_shift(analyses or NO_ANALYSES, data, augmentation)
    if options.positive_class is None:  # the dataset's clinical positive unless overridden
        options = dataclasses.replace(options, positive_class=data.positive_class)
    figures_dir = Path(run_dir) / "figures"
    inputs = eval_inputs(
        encoder, data, labelled, device, precision, batch_size, head, head_info, feed, speed
    )

    started = time.perf_counter()
    if feature_cache is not None:
        load_cached_features(inputs, data, labelled, feature_cache)
    for split in ("train", "val", "test"):  # once, shared by every protocol
        inputs.features(split)
    results: dict[str, float] = {"time/features_s": time.perf_counter() - started}
    if data.task == Task.BINARY:
        results["positive_class"] = data.class_names[options.positive(2)]

    protocol_results, outputs = run_protocols(protocols, inputs, data, options, figures_dir)
    results.update(protocol_results)

    started = time.perf_counter()
    results.update(
        run_analyses(analyses, outputs, results, data, options, run_dir, device, batch_size)
    )
    results["time/analyses_s"] = time.perf_counter() - started

    if options.figures:
        started = time.perf_counter()
        draw_embeddings(inputs, data, options, figures_dir)
        results["time/embedding_figures_s"] = time.perf_counter() - started
    if options.cam:
        draw_grad_cam(outputs, inputs, data, options, figures_dir, device)
    return results


def with_prepared_shift(
    analyses: Analyses, data: DatasetSplits, augmentation: nn.Module | None
) -> Analyses:
    """The shift dataset checked against `data` and given the same stored-image transforms."""
    if analyses.shift_dataset is None:
        return analyses
    shift = check_shift_dataset(analyses.shift_dataset, data)
    shift = prepare_dataset(augmentation, shift) if augmentation is not None else shift
    return dataclasses.replace(analyses, shift_dataset=shift)


def eval_inputs(
    encoder: nn.Module,
    data: DatasetSplits,
    labelled: torch.Tensor,
    device: torch.device,
    precision: str,
    batch_size: int,
    head: nn.Module | None,
    head_info: dict | None,
    feed: FeedOptions | None = None,
    speed: SpeedOptions | None = None,
) -> EvalInputs:
    """What a protocol may touch: the labelled training images (gathered only when read),
    val and test."""
    return EvalInputs(
        task=data.task,
        num_classes=data.num_classes,
        encoder=encoder.to(device),
        images={
            "train": IndexedImages(data.train.images, labelled),
            "val": data.val.images,
            "test": data.test.images,
        },
        labels={
            "train": data.train.labels[labelled].numpy(),
            "val": data.val.labels.numpy(),
            "test": data.test.labels.numpy(),
        },
        device=device,
        precision=precision,
        batch_size=batch_size,
        head=head,
        head_info=dict(head_info or {}),
        intensity=data.intensity,
        feed=feed,
        speed=speed,
    )


def load_cached_features(
    inputs: EvalInputs, data: DatasetSplits, labelled: torch.Tensor, cache: FeatureCache
) -> None:
    """Give `inputs` the features of its splits from `cache` (extracted into it where missing,
    by `inputs.features_of`, as `inputs.features` would)."""
    material = encoder_material(inputs.encoder, inputs.intensity, inputs.precision)
    inputs._features.update(cache.split_features(data, labelled, material, inputs.features_of))


def run_protocols(
    protocols: dict[str, EvaluationProtocol],
    inputs: EvalInputs,
    data: DatasetSplits,
    options: EvalOutputOptions,
    figures_dir: Path,
) -> tuple[dict[str, float], dict[str, ProtocolOutput]]:
    """Each protocol fitted and scored (with its figures); its flat keys and its output."""
    results: dict[str, float] = {}
    outputs = {}
    test_images = data.test.images.numpy()
    for name, protocol in protocols.items():
        log.info(
            "Evaluating with the %s protocol on %d labelled images",
            name,
            len(inputs.labels["train"]),
        )
        started = time.perf_counter()
        out = protocol.evaluate(inputs)
        if out is None:  # the protocol logged why it does not apply to this run
            continue
        outputs[name] = out
        scored, scores = score_protocol(name, out, data.task, inputs.labels, options)
        results.update(scored)
        if options.figures:
            draw_protocol_figures(
                name,
                data.task,
                inputs.labels["test"],
                scores,
                test_images,
                data.class_names,
                options,
                figures_dir,
            )
        results[f"time/eval_{name}_s"] = time.perf_counter() - started
    return results, outputs


def draw_embeddings(
    inputs: EvalInputs, data: DatasetSplits, options: EvalOutputOptions, figures_dir: Path
) -> None:
    """t-SNE, PCA (and UMAP) maps of the frozen test features."""
    embedding_figures(
        inputs.features("test"),
        inputs.labels["test"],
        data.task,
        data.class_names,
        figures_dir,
        options.embedding_max_points,
        options.tsne_perplexity,
        options.tsne_max_iter,
    )


def draw_grad_cam(
    outputs: dict[str, ProtocolOutput],
    inputs: EvalInputs,
    data: DatasetSplits,
    options: EvalOutputOptions,
    figures_dir: Path,
    device: torch.device,
) -> None:
    """Grad-CAM of the first protocol that produced an image classifier (encoder + head)."""
    first = next(
        ((name, out.model) for name, out in outputs.items() if out.model is not None), None
    )
    if first is None:
        log.info(
            "Grad-CAM skipped: no protocol produced an image classifier (use linear or finetune)"
        )
        return
    name, model = first
    pick = spread_over_classes(inputs.labels["test"], options.cam_images, data.task)
    cam_figure(
        name,
        model,
        model[0],
        data.test.images[pick],
        inputs.labels["test"][pick],
        data.task,
        data.class_names,
        figures_dir,
        device,
    )
