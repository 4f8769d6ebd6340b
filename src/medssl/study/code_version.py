"""The code an encoder was pretrained by, as part of its cache key.

A cached encoder is reused only by the code that would train it again: a digest of the source
of every module that shapes pretraining (methods, losses, augmentations, models, the training
loop, how stored pixels become the model's input), plus the torch and timm versions. An edit
to a loss's file makes the next run pretrain again instead of reusing an encoder trained by the
old loss. Weights files (`backbone.weights`) are keyed by their content, not their path.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import timm
import torch

import medssl

PACKAGE = Path(medssl.__file__).resolve().parent
# Relative to the package; a folder stands for every .py file below it.
PRETRAINING_CODE = (
    "methods",
    "losses",
    "augment",
    "models",
    "training",
    "pretraining_setup.py",
    "pretraining_loop_config.py",
    "data/image_store.py",
    "data/indexed_images.py",
    "data/intensity.py",
    "data/model_input.py",
    "data/pretrained_input.py",
)


def code_version(package: Path = PACKAGE) -> dict:
    return {
        "source": source_digest(package),
        "torch": str(torch.__version__),  # a TorchVersion would not load with weights_only
        "timm": str(timm.__version__),
    }


@functools.cache
def source_digest(package: Path) -> str:
    """sha256 over the relative path and bytes of each pretraining source file (once per
    process: the code does not change under a running job)."""
    digest = hashlib.sha256()
    for path in _source_files(package):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _source_files(package: Path) -> list[Path]:
    files = []
    for entry in PRETRAINING_CODE:
        path = package / entry
        files.extend(sorted(path.rglob("*.py")) if path.is_dir() else [path])
    return files


def weights_digest(path: str) -> str:
    """A weights file's content digest; the path itself where no such file is (the backbone
    has already refused it then)."""
    file = Path(path).expanduser()
    if not file.is_file():
        return path
    stat = file.stat()
    return _file_digest(str(file.resolve()), stat.st_size, stat.st_mtime_ns)


@functools.cache
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(1 << 24):
            digest.update(chunk)
    return f"sha256:{digest.hexdigest()[:16]}"
