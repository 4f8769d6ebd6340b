"""MedMNIST 2D datasets from the medmnist package's `.npz` cache, memory-mapped from the store.

The cache folder is `root` (config: `${oc.env:MEDMNIST_ROOT,~/.medmnist}`). A missing file is
downloaded by the medmnist package when the network allows; otherwise the run stops with one
sentence naming the file and the folder it belongs in. Each file is converted once, streaming,
into the image store (`image_store`) in `store_dir` (null: `<root>/.medssl-cache`, or the
user's cache folder when `root` is read-only); its
labels are small and read from the `.npz` each time.
"""

from __future__ import annotations

import hashlib
import logging
import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch

from medssl.data.image_store import StoreSpec, stored_splits, writable_store_dir
from medssl.data.npz_rows import NpzRows, npz_header
from medssl.data.splits import DatasetSplits, Split
from medssl.data.task import Task
from medssl.errors import MedsslError

log = logging.getLogger(__name__)

SIZES = (28, 64, 128, 224)
SPLITS = ("train", "val", "test")
_TASKS = {
    "binary-class": Task.BINARY,
    "multi-class": Task.MULTICLASS,
    "multi-label, binary-class": Task.MULTILABEL,
    "ordinal-regression": Task.ORDINAL,
}


def medmnist_info(name: str) -> dict:
    import medmnist

    if name not in medmnist.INFO or name.endswith("3d"):
        flags_2d = sorted(k for k in medmnist.INFO if not k.endswith("3d"))
        raise MedsslError(
            f"unknown MedMNIST dataset {name!r}; choose one of {', '.join(flags_2d)}."
        )
    return medmnist.INFO[name]


def npz_filename(name: str, size: int) -> str:
    """The file name the medmnist package uses in its cache: `pathmnist.npz`, `pathmnist_64.npz`."""
    return f"{name}.npz" if size == 28 else f"{name}_{size}.npz"


def load_medmnist(
    name: str,
    size: int,
    root: str,
    download: bool,
    *,
    positive_class: int | None,
    references: list[dict],
    store_dir: str | None,
) -> DatasetSplits:
    """Load all three splits of one MedMNIST 2D dataset at `size` px from the cache `root`.

    `positive_class` names the clinically positive class of a binary task (BreastMNIST: 0,
    malignant; each dataset file states it); other tasks have none (null). `references` are
    published all-labels results (each a `name`, its image `size`, metric values and `source`)
    that reports draw beside this tool's numbers; `[]` where none are listed.
    """
    if size not in SIZES:
        raise MedsslError(f"MedMNIST comes in sizes {SIZES}, not {size}.")
    info = medmnist_info(name)
    folder = Path(root).expanduser()
    path = folder / npz_filename(name, size)
    if not path.exists():
        _download(name, size, folder, path, download)
    splits = _read_splits(path, name, size, store_dir)
    task = _TASKS[info["task"]]
    if task is Task.BINARY and positive_class not in (0, 1):
        raise MedsslError(
            f"{name} is a binary task: dataset.positive_class must be 0 or 1 (the class that "
            f"sensitivity and the operating points call positive), not {positive_class}."
        )
    class_names = [info["label"][k] for k in sorted(info["label"], key=int)]
    log.info(
        "Loaded %s at %d px from %s: %s train / %s val / %s test images",
        name,
        size,
        path,
        len(splits["train"]),
        len(splits["val"]),
        len(splits["test"]),
    )
    return DatasetSplits(
        name=name,
        task=task,
        class_names=class_names,
        positive_class=1 if positive_class is None else positive_class,
        references=[dict(r) for r in references],
        **splits,
    )


def _download(name: str, size: int, folder: Path, path: Path, allowed: bool) -> None:
    url = medmnist_info(name).get("url" if size == 28 else f"url_{size}", "the MedMNIST site")
    hint = (
        f"{path.name} is not in {folder} and could not be downloaded; download it from {url} "
        f"and put it in {folder} (or set MEDMNIST_ROOT to the folder that holds it)."
    )
    if not allowed:
        raise MedsslError(hint)
    import medmnist

    folder.mkdir(parents=True, exist_ok=True)
    cls = getattr(medmnist, medmnist_info(name)["python_class"])
    log.info("Downloading %s into %s", path.name, folder)
    try:
        cls(split="train", root=str(folder), size=size, download=True)
    except Exception as error:  # the package raises bare RuntimeErrors and URL errors offline
        log.debug("download failed: %r", error)
        path.unlink(missing_ok=True)
        raise MedsslError(hint) from None
    if not path.exists():
        raise MedsslError(hint)


def _read_splits(path: Path, name: str, size: int, store_dir: str | None) -> dict[str, Split]:
    keys = [f"{s}_{kind}" for s in SPLITS for kind in ("images", "labels")]
    try:
        with np.load(path) as npz:
            missing = [k for k in keys if k not in npz.files]
            if missing:
                raise MedsslError(f"{path} lacks the arrays {missing}; it is not a MedMNIST file.")
            labels = {s: _labels(npz[f"{s}_labels"]) for s in SPLITS}
        images, digests = _stored_images(path, store_dir)
    except MedsslError:
        raise
    except (zipfile.BadZipFile, zlib.error, OSError, ValueError, EOFError) as error:
        raise MedsslError(
            f"{path} is corrupt or truncated ({type(error).__name__}); delete it and download "
            f"{npz_filename(name, size)} again."
        ) from None
    return {s: Split(images[s], labels[s], digests[s]) for s in SPLITS}


def _labels(labels: np.ndarray) -> torch.Tensor:
    labels = labels[:, 0] if labels.shape[1] == 1 else labels
    return torch.from_numpy(labels.astype(np.int64))


def _stored_images(path: Path, store_dir: str | None):
    """Each split's images from the store, converted from the `.npz` a chunk at a time."""
    headers = {s: npz_header(path, f"{s}_images") for s in SPLITS}
    shape = headers["train"][0]
    channels = 1 if len(shape) == 3 else shape[3]
    spec = StoreSpec({s: h[0][0] for s, h in headers.items()}, channels, shape[1], np.uint8)
    stat = path.stat()
    key = hashlib.sha256(f"{path.name}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()
    readers: dict[str, NpzRows] = {}

    def fill(split: str, out: np.ndarray, start: int) -> None:
        reader = readers.setdefault(split, NpzRows(path, f"{split}_images"))
        rows = reader.read(len(out))
        # Grayscale files hold (N, H, W), colour ones (N, H, W, C).
        out[:] = rows[:, None] if rows.ndim == 3 else rows.transpose(0, 3, 1, 2)

    folder = writable_store_dir(store_dir, path.parent, str(path))
    try:
        return stored_splits(folder, path.stem, key, spec, str(path), fill)
    finally:
        for reader in readers.values():
            reader.close()
