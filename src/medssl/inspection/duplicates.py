"""Exact duplicate images within and across splits, found by a hash of each image's bytes.

A test image that is byte-for-byte a training image measures memory, not generalisation. Images
are compared after loading (MedMNIST's stored arrays; a folder's decoded, resized uint8 pixels),
so two files that decode to the same pixels count as one image.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import torch

from medssl.data.splits import Split


def image_digests(images: torch.Tensor) -> list[bytes]:
    """A 128-bit BLAKE2b digest of every image's bytes (shape included, so a 28 px and a 64 px
    image never collide)."""
    arrays = images.cpu().contiguous().numpy()
    shape = repr(arrays.shape[1:]).encode()
    return [hashlib.blake2b(shape + a.tobytes(), digest_size=16).digest() for a in arrays]


@dataclass
class DuplicatePair:
    """Images of split `second` with an exact copy in split `first` (for `first == second`: a
    copy earlier in the same split). `examples` are `(index in first, index in second)`."""

    first: str
    second: str
    images: int = 0
    label_conflicts: int = 0
    examples: list[tuple[int, int]] = field(default_factory=list)


def find_duplicates(splits: dict[str, Split], max_examples: int = 5) -> list[DuplicatePair]:
    """One `DuplicatePair` per split and per pair of splits, in the order of `splits`."""
    digests = {name: image_digests(split.images) for name, split in splits.items()}
    first_seen = {}
    for name, keys in digests.items():
        seen: dict[bytes, int] = {}
        for index, key in enumerate(keys):
            seen.setdefault(key, index)
        first_seen[name] = seen
    names = list(splits)
    pairs = []
    for i, first in enumerate(names):
        for second in names[i:]:
            pair = DuplicatePair(first, second)
            labels_a, labels_b = splits[first].labels, splits[second].labels
            for j, key in enumerate(digests[second]):
                k = first_seen[first].get(key)
                if k is None or (first == second and k == j):
                    continue
                pair.images += 1
                pair.label_conflicts += not torch.equal(labels_a[k], labels_b[j])
                if len(pair.examples) < max_examples:
                    pair.examples.append((k, j))
            pairs.append(pair)
    return pairs
