"""Softmax or ordinal (CORAL) head for graded labels, chosen on val of a GENERATED ordinal task.

    MEDMNIST_ROOT=../shared/data/medmnist .venv/bin/python experiments/ordinal_head/ordinal_head.py

No ordinal MedMNIST set (RetinaMNIST) is on the development machine, so the grades here are
made: genuine PneumoniaMNIST (28 px) images, graded 0-4 by a monotone function of a genuine
image property, the mean brightness of the central 14 x 14 pixels, plus Gaussian noise
(`--noise` standard deviations of that brightness), cut at the train quintiles. The grade is
therefore ordered and visible in the image, and imperfectly so, as a clinical grade is.

Per seed: the project's small CNN at its random initialisation (`method=random`'s encoder:
no pretraining, to fit the budget) and a stratified `--label-frac` of the train grades (seeded by
the seed). Every arm is the real `eval=[linear,finetune]` config with one override of
`eval.<protocol>.link` (and fine-tuning shortened to `--finetune-epochs`). Only val is read (val stands in for test), and val also picks C and the
fine-tuning checkpoint, so every arm is optimistic alike: a comparison, not an estimate.
"""

from __future__ import annotations

import argparse
import logging
import os
import time

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from sklearn.metrics import cohen_kappa_score

from medssl.configs import config_dir
from medssl.data.label_subset import labelled_subset
from medssl.data.splits import DatasetSplits, Split
from medssl.evaluation.calibration import logits_to_probs
from medssl.evaluation.metrics import auroc
from medssl.evaluation.protocol import EvalInputs
from medssl.seeding import seed_everything

GRADES = 5
ARMS = {
    "linear, softmax": ("linear", "softmax"),
    "linear, ordinal": ("linear", "ordinal"),
    "linear, auto": ("linear", "auto"),
    "finetune, softmax": ("finetune", "softmax"),
    "finetune, ordinal": ("finetune", "ordinal"),
}


def config(seed: int, overrides: list[str]):
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose(
            "config",
            overrides=[
                "method=random",
                "backbone=smallcnn",
                "dataset=pneumoniamnist",
                "eval=[linear,finetune]",
                f"seed={seed}",
                *overrides,
            ],
        )


def brightness(images: torch.Tensor) -> np.ndarray:
    """The genuine property: mean intensity of the central 14 x 14 pixels, per image."""
    return images[:, 0, 7:21, 7:21].float().mean(dim=(1, 2)).numpy()


def graded(raw: DatasetSplits, noise: float, seed: int = 0) -> DatasetSplits:
    """`raw`'s images with generated grades 0-4: quintiles (on train) of z-scored central
    brightness plus N(0, noise^2)."""
    rng = np.random.default_rng(seed)
    centre = brightness(raw.train.images)
    mean, std = centre.mean(), centre.std()
    noisy = {
        name: (brightness(split.images) - mean) / std + rng.normal(0, noise, len(split))
        for name, split in (("train", raw.train), ("val", raw.val), ("test", raw.test))
    }
    cuts = np.quantile(noisy["train"], np.linspace(0, 1, GRADES + 1)[1:-1])
    splits = {
        name: Split(split.images, torch.as_tensor(np.digitize(noisy[name], cuts)))
        for name, split in (("train", raw.train), ("val", raw.val), ("test", raw.test))
    }
    names = [f"grade {k}" for k in range(GRADES)]
    return DatasetSplits("generated_grades", "ordinal", names, **splits, intensity=raw.intensity)


def val_inputs(data: DatasetSplits, labelled, encoder) -> EvalInputs:
    """The labelled subset, val, and val again in test's place: test is never read."""
    val_images, val_labels = data.val.images, data.val.labels.numpy()
    return EvalInputs(
        task=data.task,
        num_classes=data.num_classes,
        encoder=encoder,
        images={"train": data.train.images[labelled], "val": val_images, "test": val_images},
        labels={
            "train": data.train.labels[labelled].numpy(),
            "val": val_labels,
            "test": val_labels,
        },
        device=torch.device("cpu"),
        intensity=data.intensity,
    )


def scores(y: np.ndarray, logits: np.ndarray) -> tuple[float, float, float]:
    """Val quadratic kappa and mean absolute grade error of the argmax grade, and AUROC."""
    pred = logits.argmax(1)
    kappa = cohen_kappa_score(y, pred, labels=np.arange(GRADES), weights="quadratic")
    return kappa, np.abs(pred - y).mean(), auroc("ordinal", y, logits_to_probs("ordinal", logits))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--label-frac", type=float, default=0.1)
    parser.add_argument("--noise", type=float, default=0.5)
    parser.add_argument("--finetune-epochs", type=int, default=5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    started = time.perf_counter()
    root = os.environ.get("MEDMNIST_ROOT", "~/.medmnist")
    raw = instantiate(config(0, []).dataset, size=28, root=root, download=False)
    data = graded(raw, args.noise)
    print(
        f"grades per split: {[np.bincount(s.labels.numpy()).tolist() for s in (data.train, data.val)]}"
    )
    rows: dict[str, list[tuple[float, float, float]]] = {}
    for seed in args.seeds:
        labelled = labelled_subset(data.train.labels, args.label_frac, seed, data.class_names)
        seed_everything(seed)
        cfg = config(seed, [])
        encoder = instantiate(cfg.backbone, in_chans=1, input_size=28).eval()
        inputs = val_inputs(data, labelled, encoder)
        for arm, (protocol, link) in ARMS.items():
            epochs = f"eval.finetune.epochs={args.finetune_epochs}"
            cfg = config(seed, [f"eval.{protocol}.link={link}", epochs])
            seed_everything(seed)
            t0 = time.perf_counter()
            out = instantiate(cfg.eval[protocol]).evaluate(inputs)
            row = scores(inputs.labels["val"], out.val)
            rows.setdefault(arm, []).append(row)
            chosen = {k: v for k, v in out.params.items() if "kappa" in k or k == "link"}
            print(
                f"seed {seed} {arm}: val kappa {row[0]:.3f}, MAE {row[1]:.3f}, AUROC {row[2]:.3f} "
                f"{chosen} ({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )
    print(
        f"\nval, mean (min-max) over seeds {args.seeds}; {len(labelled)} labels; noise {args.noise}"
    )
    print("| arm | val quadratic kappa | val grade MAE | val AUROC |\n|---|---|---|---|")
    for arm, values in rows.items():
        cells = [f"{v.mean():.3f} ({v.min():.3f}-{v.max():.3f})" for v in np.array(values).T]
        print(f"| {arm} | {' | '.join(cells)} |")
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
