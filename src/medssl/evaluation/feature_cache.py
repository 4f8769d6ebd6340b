"""Frozen features kept on disk, so a label-fraction grid extracts each split once per encoder.

Every job of a label-efficiency grid scores the same encoder (a frozen foundation model, or one
cached SSL encoder per seed) on other labels; the features it extracts do not depend on them.
`FeatureCache` keeps the features of whole splits under a digest of what makes them: the
encoder's weights (their content, from its state dict) and architecture, the input transform its
pretrained weights need (`data.pretrained_input`), how stored pixels become [0, 1] (the
dataset's intensity mapping), the precision, the split's images (by content) and the code that
pretrains and extracts (`study.code_version`'s digest, with the torch and timm versions). The
labelled subset of each job is a selection of rows of the cached train features.

Files are `<folder>/<key>.npy`, written to a temporary and renamed: two jobs that extract the
same features at once write the same bytes, and a reader never sees a torn file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from medssl.atomic_files import write_bytes
from medssl.data.image_store import array_digest
from medssl.data.intensity import IntensityMapping
from medssl.data.pretrained_input import input_transform
from medssl.data.splits import DatasetSplits, Split
from medssl.study.code_version import code_version

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
FEATURES = "features"  # the folder under the encoder cache's


def weights_digest(module: nn.Module) -> str:
    """sha256 over the names, dtypes, shapes and bytes of `module`'s state dict."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        array = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{array.dtype}:{tuple(array.shape)}\0".encode())
        digest.update(array.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:32]


def encoder_material(
    encoder: nn.Module, intensity: IntensityMapping | None, precision: str
) -> dict:
    """What shapes the features of any image, as plain data: weights, architecture, input
    transform, intensity mapping, precision and code."""
    transform = input_transform(encoder)
    return {
        "weights": weights_digest(encoder),
        "architecture": hashlib.sha256(repr(encoder).encode()).hexdigest()[:16],
        "input_transform": transform.describe() if transform is not None else None,
        "intensity": dataclasses.asdict(intensity) if intensity is not None else None,
        "precision": precision,
        "code": code_version(),
    }


def split_digest(split: Split) -> str:
    return split.digest or array_digest(split.images.numpy())


def feature_key(material: dict, images_digest: str) -> str:
    text = json.dumps({**material, "images": images_digest}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class FeatureCache:
    """Features of whole splits in `folder`, by `feature_key`."""

    folder: Path

    def path(self, key: str) -> Path:
        return Path(self.folder) / f"{key}.npy"

    def get_or_extract(self, key: str, extract: Callable[[], np.ndarray]) -> np.ndarray:
        """The stored features under `key`, else `extract()`'s, stored."""
        path = self.path(key)
        if path.is_file():
            try:
                return np.load(path, allow_pickle=False)
            except (OSError, ValueError) as error:  # not ours or damaged: extract again
                log.warning("Feature cache file %s unreadable (%s); extracting again", path, error)
        features = np.ascontiguousarray(extract(), dtype=np.float32)
        buffer = io.BytesIO()
        np.save(buffer, features, allow_pickle=False)
        write_bytes(path, buffer.getvalue())
        return features

    def split_features(
        self,
        data: DatasetSplits,
        labelled: torch.Tensor,
        material: dict,
        extract: Callable[[torch.Tensor], np.ndarray],
    ) -> dict[str, np.ndarray]:
        """Features of the labelled training images, val and test, from the whole splits'
        cached features (extracted with `extract(images)` where missing)."""
        found = {}
        for name in SPLITS:
            split = getattr(data, name)
            key = feature_key(material, split_digest(split))
            found[name] = self.get_or_extract(key, lambda s=split: extract(s.images))
        found["train"] = found["train"][labelled.numpy()]
        return found
