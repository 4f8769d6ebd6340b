"""Which supervised runs an SSL recipe is paired with: the baseline at the same dataset, label
fraction, seed, label seed and evaluation settings, whatever the SSL recipe's own pretraining
keys (config_schema.ROLES); the report names the baseline where there are several."""

from __future__ import annotations

import pytest

from medssl.study.report import write_report
from tests.study.report.conftest import row_of, table_under, write_job

HEADING = "#### test/linear/auroc: paired difference against supervised"
SEEDS = (0, 1, 2)


def _sweep(sweep, supervised_augmentations=("medical",)):
    """simclr with two augmentation presets beside the supervised baseline, 3 seeds."""
    for seed in SEEDS:
        for augmentation, auroc in (("byol", 0.80), ("simclr", 0.70)):
            write_job(
                sweep,
                f"simclr,augmentation={augmentation},seed={seed}",
                method="simclr",
                augmentation=augmentation,
                seed=seed,
                auroc=auroc + 0.01 * seed,
                overrides=(f"augmentation={augmentation}",),
            )
        for augmentation in supervised_augmentations:
            write_job(
                sweep,
                f"supervised,augmentation={augmentation},seed={seed}",
                method="supervised",
                augmentation=augmentation,
                seed=seed,
                auroc=0.75 + (0.02 if augmentation == "finetune" else 0.0),
                overrides=(f"augmentation={augmentation}",),
            )


def test_each_ssl_recipe_is_paired_with_the_one_supervised_baseline(tmp_path):
    _sweep(tmp_path)
    markdown = write_report(tmp_path).read_text()
    paired = table_under(markdown, HEADING)
    # simclr byol - supervised: 0.80 + 0.01 s - 0.75 = +0.05 + 0.01 s; mean over seeds +0.060
    byol = row_of(paired, "simclr, augmentation=byol")
    assert byol.split("|")[2].strip().startswith("+0.060 ± ") and "(won 3/3)" in byol
    other = row_of(paired, "simclr, augmentation=simclr")
    assert other.split("|")[2].strip().startswith("-0.040 ± ") and "(won 0/3)" in other
    assert "No supervised run" not in markdown


def test_with_several_supervised_variants_the_report_says_which_it_used(tmp_path):
    _sweep(tmp_path, supervised_augmentations=("medical", "finetune"))
    markdown = write_report(tmp_path).read_text()
    paired = table_under(markdown, HEADING)
    assert "Supervised baselines used:" in markdown
    byol = row_of(paired, "simclr, augmentation=byol")
    # The plainest supervised variant is the baseline: no part beyond its method.
    used = markdown.split("Supervised baselines used:", 1)[1].split("\n", 1)[0]
    assert "simclr, augmentation=byol against supervised" in used
    mean = float(byol.split("|")[2].strip().split(" ")[0].replace("−", "-"))
    assert mean == pytest.approx(0.06)  # against `supervised`, not the finetune variant (+0.04)
