"""A sweep folder written by hand for the report's tests: each job's config.yaml, overrides and
results.json (or error.json), and readers of the markdown and CSV tables the report writes."""

from __future__ import annotations

import csv
import json

from omegaconf import OmegaConf

SOURCE = "MedMNIST v2 (Yang et al., Sci Data 2023), Table 3"


def run_config(method, frac, seed, augmentation, backbone, blur, temperature=0.2):
    """A small resolved config: what differs by method (optimizer) comes with the method."""
    return {
        "label_frac": frac,
        "seed": seed,
        "label_seed": seed,
        "skip_done": True,
        "method": {"_target_": f"medssl.methods.{method}.Method", "temperature": temperature},
        "optimizer": {"name": "lars" if method == "simclr" else "adamw", "base_lr": 0.001},
        "backbone": {"name": backbone},
        "dataset": {"name": "breastmnist", "root": f"/data/user{seed}", "download": True},
        "augmentation": {
            "_target_": "medssl.augment.pipeline.ViewPipeline",
            "cpu_threads": seed,  # how fast views are made, not which: never splits a cell
            "jitter": {"p": 0.8 if augmentation == "medical" else 1.0},
            "blur": blur,
        },
        "trainer": {"epochs": 30, "device": "cuda" if seed else "cpu"},
        "cache": {"dir": f"/tmp/cache{seed}"},
    }


def write_job(
    sweep,
    folder,
    *,
    method="simclr",
    frac=0.1,
    seed=0,
    auroc=0.8,
    augmentation="medical",
    backbone="resnet18",
    blur="default",
    error=None,
    reference=False,
    dataset="breastmnist",
    temperature=0.2,
    overrides=(),
):
    path = sweep / folder
    path.mkdir(parents=True)
    if blur == "default":
        blur = {"_target_": "medssl.augment.blur.GaussianBlur", "sigma": [0.1, 1.0], "p": 0.2}
    config = run_config(method, frac, seed, augmentation, backbone, blur, temperature)
    OmegaConf.save(OmegaConf.create(config), path / "config.yaml")
    (path / ".hydra").mkdir()
    OmegaConf.save(OmegaConf.create([f"seed={seed}", *overrides]), path / ".hydra/overrides.yaml")
    record = {
        "config/method": method,
        "config/backbone": backbone,
        "config/dataset": dataset,
        "config/augmentation": augmentation,
        "config/logger": "None",
        "label_frac": frac,
        "seed": seed,
        "label_seed": seed,
    }
    if error is not None:
        record |= {"error": error, "error_type": "MedsslError"}
        (path / "error.json").write_text(json.dumps(record))
        return path
    record |= {
        "test/linear/auroc": auroc,
        "test/linear/acc": auroc - 0.1,
        "test/linear/ece_ts": 0.05,
        "pretrain/reused": False,
        "time/total_s": 10.0,
    }
    if reference:
        record |= {"reference/auroc": 0.901, "reference/acc": 0.863, "reference/source": SOURCE}
    (path / "results.json").write_text(json.dumps(record))
    return path


AUROCS = {
    ("simclr", 0.1): [0.70, 0.75, 0.83],
    ("supervised", 0.1): [0.60, 0.62, 0.70],
    ("simclr", 1.0): [0.90, 0.92, 0.91],
    ("supervised", 1.0): [0.90, 0.95, 0.89],  # seed 0 ties: not a win
}


def label_efficiency_sweep(sweep, reference=False):
    for (method, frac), values in AUROCS.items():
        for seed, auroc in enumerate(values):
            folder = f"method={method},label_frac={frac},seed={seed}"
            write_job(
                sweep, folder, method=method, frac=frac, seed=seed, auroc=auroc, reference=reference
            )


def table_under(markdown, heading):
    """The lines of the markdown table under `heading`."""
    after = markdown.split(heading + "\n", 1)[1].lstrip("\n")
    return after.split("\n\n", 1)[0].splitlines()


def row_of(table, label):
    return next(line for line in table if line.startswith(f"| {label} |"))


def csv_rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))
