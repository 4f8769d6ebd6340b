"""The report flags an SSL recipe whose val scores stay within noise of `random`, judged on val
seed by seed, and says nothing of one that clears the floor; a tuned study's recipes are shown."""

from __future__ import annotations

import json

from omegaconf import OmegaConf

from medssl.study.report import write_report
from medssl.study.report.tuning import TUNING_FILE
from tests.study.report.conftest import write_job

FLAG = "Pretraining learned little here"
# val/linear/auroc per seed: vicreg moves with the floor (+0.00, +0.02, -0.01), simclr clears it.
VAL = {
    "random": [0.60, 0.62, 0.65],
    "vicreg": [0.60, 0.64, 0.64],
    "simclr": [0.70, 0.73, 0.74],
}
CLASSES = {
    "random": "medssl.methods.random_init.RandomInit",
    "vicreg": "medssl.methods.vicreg.VICReg",
    "simclr": "medssl.methods.simclr.SimCLR",
}


def _sweep(sweep, methods=("random", "vicreg", "simclr"), fracs=(0.1, 1.0)):
    for method in methods:
        for frac in fracs:
            for seed, val in enumerate(VAL[method]):
                job = write_job(
                    sweep, f"{method},{frac},{seed}", method=method, frac=frac, seed=seed
                )
                record = json.loads((job / "results.json").read_text())
                record["val/linear/auroc"] = val + (0.1 if frac == 1.0 else 0.0)
                (job / "results.json").write_text(json.dumps(record))
                config = OmegaConf.load(job / "config.yaml")
                config.method._target_ = CLASSES[method]  # the flag asks the method's class
                OmegaConf.save(config, job / "config.yaml")


def test_a_recipe_within_noise_of_random_on_val_is_flagged_and_one_above_is_not(tmp_path):
    _sweep(tmp_path)
    markdown = write_report(tmp_path).read_text()
    flag = next(line for line in markdown.splitlines() if FLAG in line)
    # vicreg - random: (0.00, +0.02, -0.01), mean +0.003, at both fractions
    assert "vicreg (10 %: +0.003 ±" in flag and "100 %: +0.003 ±" in flag
    assert "simclr" not in flag and "val/linear/auroc" in flag


def test_no_flag_without_a_random_floor_or_without_val_scores(tmp_path):
    _sweep(tmp_path / "no_floor", methods=("vicreg", "simclr"))
    assert FLAG not in write_report(tmp_path / "no_floor").read_text()
    for seed in range(3):
        for method in ("random", "vicreg"):
            write_job(tmp_path / "test_only", f"{method},{seed}", method=method, seed=seed)
    assert FLAG not in write_report(tmp_path / "test_only").read_text()


def test_a_tuned_study_states_each_recipe_and_the_val_score_that_chose_it(tmp_path):
    _sweep(tmp_path)
    tuning = {
        "simclr": {
            "overrides": ["augmentation=byol", "optimizer.base_lr=0.0021"],
            "searched": {"augmentation": "byol", "optimizer.base_lr": 0.002131},
            "val_metric": "val/linear/auroc",
            "val_best": 0.8123,
            "trials_finished": 11,
            "trials_failed": 1,
        },
        "random": {"overrides": [], "untuned": True},
    }
    (tmp_path / TUNING_FILE).write_text(json.dumps(tuning))
    markdown = write_report(tmp_path).read_text()
    section = markdown.split("## Recipes chosen on val", 1)[1]
    assert "| simclr | `augmentation=byol`, `optimizer.base_lr=0.0021` |" in section
    assert "val/linear/auroc = 0.812 | 11 (1) |" in section
    assert "| random | as configured (not tuned) |" in section
