"""The study report: cells over seeds with Student-t intervals, variants named by what sets them
apart, paired differences against supervised, failed and missing runs, HTML, CSVs, figures."""

from __future__ import annotations

import base64
import json
import math
import os
from html.parser import HTMLParser

import pytest
from omegaconf import OmegaConf

from medssl import MedsslError
from medssl.cli.report import main
from medssl.study.report import read_report_options, report_options_file, write_report
from tests.study.report.conftest import (
    AUROCS,
    SOURCE,
    csv_rows,
    label_efficiency_sweep,
    row_of,
    table_under,
    write_job,
)

T_975_2 = 4.302653  # t_{0.975, 2}: the 95 % two-sided Student-t quantile for 3 seeds


def _mean_and_half_width(values):
    n = len(values)
    mean = sum(values) / n
    s = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return mean, T_975_2 * s / math.sqrt(n)


def test_cells_are_means_with_student_t_intervals_and_the_best_is_bold(tmp_path):
    label_efficiency_sweep(tmp_path)
    markdown = write_report(tmp_path).read_text()
    table = table_under(markdown, "#### test/linear/auroc (AUROC)")
    assert table[0] == "| variant | 10 % | 100 % |"
    for method in ("simclr", "supervised"):
        cells = []
        for frac in (0.1, 1.0):
            mean, half = _mean_and_half_width(AUROCS[(method, frac)])
            cells.append(f"{mean:.3f} ± {half:.3f} (n=3)")
        best = {"simclr": (True, False), "supervised": (False, True)}[method]
        cells = [f"**{c}**" if bold else c for c, bold in zip(cells, best)]
        assert row_of(table, method) == f"| {method} | {cells[0]} | {cells[1]} |"

    # The method's own optimizer is part of its recipe, not a variant of its own.
    summary = {(r["variant"], r["label_frac"]): r for r in csv_rows(tmp_path / "summary.csv")}
    assert {variant for variant, _ in summary} == {"simclr", "supervised"}
    mean, half = _mean_and_half_width(AUROCS[("simclr", 0.1)])
    assert float(summary[("simclr", "0.1")]["test/linear/auroc mean"]) == pytest.approx(mean)
    assert float(summary[("simclr", "0.1")]["test/linear/auroc ci95"]) == pytest.approx(half)

    paired = table_under(markdown, "#### test/linear/auroc: paired difference against supervised")
    cells = []
    for frac in (0.1, 1.0):
        differences = [
            a - b for a, b in zip(AUROCS[("simclr", frac)], AUROCS[("supervised", frac)])
        ]
        mean, half = _mean_and_half_width(differences)
        won = sum(d > 0 for d in differences)
        cells.append(f"{mean:+.3f} ± {half:.3f} (won {won}/3)")
    assert cells[1].endswith("(won 1/3)")
    assert row_of(paired, "simclr") == f"| simclr | {cells[0]} | {cells[1]} |"
    assert "A positive difference means the variant's AUROC is higher" in markdown
    assert "published reference" not in markdown


def test_an_ablation_keeps_each_recipe_in_its_own_readable_row(tmp_path):
    for seed, auroc in enumerate([0.80, 0.82]):
        write_job(tmp_path, f"base/{seed}", seed=seed, auroc=auroc)
        write_job(tmp_path, f"no_blur/{seed}", seed=seed, auroc=auroc - 0.2, blur=None)
        write_job(tmp_path, f"byol/{seed}", seed=seed, auroc=0.5, augmentation="byol")
    markdown = write_report(tmp_path).read_text()
    table = table_under(markdown, "#### test/linear/auroc (AUROC)")
    assert [line.split(" | ")[0] for line in table[2:]] == [
        "| simclr",
        "| simclr, augmentation.blur=None",
        "| simclr, augmentation=byol",
    ]
    assert row_of(table, "simclr") == "| simclr | **0.810 ± 0.127 (n=2)** |"
    assert row_of(table, "simclr, augmentation.blur=None") == (
        "| simclr, augmentation.blur=None | 0.610 ± 0.127 (n=2) |"
    )
    assert "jitter" not in markdown  # it changes with the augmentation option, not on its own
    assert (tmp_path / "ablation_auroc.png").read_bytes()[:4] == b"\x89PNG"
    # No supervised run: each variant is paired against the recipe, seed by seed.
    paired = table_under(markdown, "#### test/linear/auroc: paired difference against simclr")
    assert paired[0] == "| variant − simclr | 10 % |"
    assert row_of(paired, "simclr, augmentation.blur=None") == (
        "| simclr, augmentation.blur=None | -0.200 ± 0.000 (won 0/2) |"
    )
    # Differences -0.30 and -0.32: sd 0.01414, t_{0.975, 1} = 12.706 -> 12.706 * 0.01414 / sqrt 2.
    assert row_of(paired, "simclr, augmentation=byol") == (
        "| simclr, augmentation=byol | -0.310 ± 0.127 (won 0/2) |"
    )
    assert "against supervised" not in markdown


def test_on_a_tie_the_recipe_left_at_its_config_defaults_is_the_unnamed_one(tmp_path):
    # Three runs each: the overridden temperature sorts first by value, the default must still
    # be the plain `simclr` row and the reference the other is paired against.
    for seed in range(3):
        write_job(
            tmp_path,
            f"t05/{seed}",
            seed=seed,
            auroc=0.7 + seed / 100,
            temperature=0.05,
            overrides=("method.temperature=0.05",),
        )
        write_job(tmp_path, f"default/{seed}", seed=seed, auroc=0.8 + seed / 100)
    markdown = write_report(tmp_path).read_text()
    table = table_under(markdown, "#### test/linear/auroc (AUROC)")
    assert [line.split(" | ")[0] for line in table[2:]] == [
        "| simclr",
        "| simclr, method.temperature=0.05",
    ]
    assert row_of(table, "simclr").startswith("| simclr | **0.810 ± ")
    paired = table_under(markdown, "#### test/linear/auroc: paired difference against simclr")
    assert row_of(paired, "simclr, method.temperature=0.05").startswith(
        "| simclr, method.temperature=0.05 | -0.100 ± 0.000 (won 0/3)"
    )


def test_when_every_run_chooses_a_group_its_config_default_is_the_unnamed_one(tmp_path):
    # Every command line sets `augmentation`; `finetune` would come first by name, but the
    # config's default for supervised is `medical`, so that is the plain `supervised` row.
    for augmentation in ("finetune", "medical", "none"):
        for seed in range(2):
            write_job(
                tmp_path,
                f"{augmentation}/{seed}",
                method="supervised",
                seed=seed,
                augmentation=augmentation,
                overrides=("method=supervised", f"augmentation={augmentation}"),
            )
    write_report(tmp_path)
    summary = csv_rows(tmp_path / "summary.csv")
    assert sorted({r["variant"] for r in summary}) == [
        "supervised",
        "supervised, augmentation=finetune",
        "supervised, augmentation=none",
    ]
    plain = [r for r in summary if r["variant"] == "supervised"]
    runs = csv_rows(tmp_path / "runs.csv")
    medical = {r["folder"] for r in runs if r["folder"].startswith("medical/")}
    assert plain and medical == {r["folder"] for r in runs if r["variant"] == "supervised"}


def test_a_backbone_comparison_names_every_backbone(tmp_path):
    for backbone in ("resnet18", "resnet50"):
        write_job(tmp_path, backbone, backbone=backbone)
    write_report(tmp_path)
    summary = csv_rows(tmp_path / "summary.csv")
    assert [r["variant"] for r in summary] == [
        "simclr, backbone=resnet18",
        "simclr, backbone=resnet50",
    ]


def test_old_runs_without_config_choices_are_named_by_their_results(tmp_path):
    for method, auroc in (("SimCLR", 0.8), ("Supervised", 0.7)):
        for seed in range(2):
            (tmp_path / f"{method}{seed}").mkdir()
            old = {"method": method, "backbone": "resnet18", "dataset": "breastmnist"}
            old |= {"label_frac": 0.1, "seed": seed, "test/linear/auroc": auroc + seed / 100}
            (tmp_path / f"{method}{seed}" / "results.json").write_text(json.dumps(old))
    markdown = write_report(tmp_path).read_text()
    assert "| SimCLR | **0.805 ± 0.064 (n=2)** |" in markdown
    paired = table_under(markdown, "#### test/linear/auroc: paired difference against supervised")
    assert row_of(paired, "SimCLR") == "| SimCLR | +0.100 ± 0.000 (won 2/2) |"


def test_failed_and_missing_runs_are_reported_in_a_partial_report(tmp_path):
    write_job(tmp_path, "simclr_0.1_s0", seed=0, auroc=0.70)
    write_job(tmp_path, "simclr_0.1_s1", seed=1, auroc=0.80)
    rerun = write_job(tmp_path, "simclr_0.1_s2", seed=2, error="CUDA out of memory.")
    (rerun / "results.json").write_text(json.dumps({"test/linear/auroc": 0.99}))
    os.utime(rerun / "results.json", (1, 1))  # an older success, stale since the rerun failed
    for seed in range(3):
        write_job(tmp_path, f"simclr_1.0_s{seed}", frac=1.0, seed=seed, error="loss became NaN.")
    write_job(tmp_path, "supervised_0.1_s0", method="supervised", seed=0, auroc=0.60)
    markdown = write_report(tmp_path).read_text()

    assert "3 runs finished, 4 failed; 1 of 3 cells are missing seeds" in markdown
    assert "1 variant × label-fraction cells have no run yet" in markdown
    assert "- simclr_1.0_s0: loss became NaN." in markdown
    assert "- simclr_0.1_s2: CUDA out of memory." in markdown
    table = table_under(markdown, "#### test/linear/auroc (AUROC)")
    assert row_of(table, "simclr") == "| simclr | **0.750 ± 0.635 (n=2) (1 failed)** | failed |"
    assert row_of(table, "supervised") == "| supervised | 0.600 (n=1) | – |"
    paired = table_under(markdown, "#### test/linear/auroc: paired difference against supervised")
    assert row_of(paired, "simclr") == "| simclr | +0.100 (won 1/1) | – |"

    runs = {r["folder"]: r for r in csv_rows(tmp_path / "runs.csv")}
    assert runs["simclr_0.1_s2"]["status"] == "failed"
    assert runs["simclr_0.1_s2"]["error"] == "CUDA out of memory."
    assert runs["simclr_0.1_s0"]["test/linear/auroc"] == "0.7"


def test_html_is_self_contained_with_embedded_pngs(tmp_path):
    label_efficiency_sweep(tmp_path)
    write_job(tmp_path, "broken", seed=5, error="CUDA out of memory.")
    write_report(tmp_path)
    text = (tmp_path / "report.html").read_text()

    class Collector(HTMLParser):
        def __init__(self):
            super().__init__()
            self.tags, self.images = [], []

        def handle_starttag(self, tag, attrs):
            self.tags.append(tag)
            if tag == "img":
                self.images.append(dict(attrs)["src"])

    parser = Collector()
    parser.feed(text)
    parser.close()
    assert "table" in parser.tags and "strong" in parser.tags
    assert len(parser.images) >= 2  # label-efficiency curves and the per-variant bars
    for src in parser.images:
        prefix = "data:image/png;base64,"
        assert src.startswith(prefix)
        assert base64.b64decode(src[len(prefix) :])[:4] == b"\x89PNG"
    assert "http" not in text
    assert "broken: CUDA out of memory." in text


def test_csv_files_hold_every_run_and_every_cell(tmp_path):
    label_efficiency_sweep(tmp_path)
    write_job(tmp_path, "failed_run", method="supervised", seed=3, error="disk full.")
    write_report(tmp_path)
    runs = csv_rows(tmp_path / "runs.csv")
    assert len(runs) == 13
    assert [r["status"] for r in runs].count("failed") == 1
    assert {"folder", "variant", "label_frac", "seed", "test/linear/auroc", "time/total_s"} <= set(
        runs[0]
    )
    cells = csv_rows(tmp_path / "summary.csv")
    assert len(cells) == 4
    failed_cell = next(
        c for c in cells if c["variant"] == "supervised" and c["label_frac"] == "0.1"
    )
    assert (failed_cell["n_runs"], failed_cell["n_failed"]) == ("4", "1")
    assert failed_cell["test/linear/auroc n"] == "3"


def test_published_reference_row_and_citation(tmp_path):
    label_efficiency_sweep(tmp_path, reference=True)
    markdown = write_report(tmp_path).read_text()
    table = table_under(markdown, "#### test/linear/auroc (AUROC)")
    assert row_of(table, "published reference (all labels)").endswith("| 0.901 | 0.901 |")
    assert f"Published reference: {SOURCE}." in markdown
    assert (tmp_path / "label_efficiency_auroc.png").exists()
    # The papers report test: a val metric's table carries no reference row.
    for path in tmp_path.glob("*/results.json"):
        record = json.loads(path.read_text())
        path.write_text(json.dumps({**record, "val/linear/auroc": record["test/linear/auroc"]}))
    chosen = read_report_options(report_options_file()).overridden(
        confidence=None, metrics=["val/linear/auroc"]
    )
    val = write_report(tmp_path, chosen, out=tmp_path / "val").read_text()
    assert "published" not in table_under(val, "#### val/linear/auroc (AUROC)")[-1]
    assert "Published reference" not in val


def test_cli_with_chosen_metric_and_output_folder(tmp_path, capsys):
    sweep, out = tmp_path / "sweep", tmp_path / "out"
    label_efficiency_sweep(sweep)
    write_job(sweep, "other_dataset", dataset="pneumoniamnist", frac=0.1)
    assert main([str(sweep), "--metric", "test/linear/auroc", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "#### test/linear/auroc (AUROC)" in printed and "test/linear/acc" not in printed
    assert "## pneumoniamnist" in printed
    assert (out / "label_efficiency_auroc_breastmnist.png").exists()
    assert {"report.md", "report.html", "runs.csv", "summary.csv"} <= {
        p.name for p in out.iterdir()
    }
    assert main([str(sweep), "--metric", "test/linear/nope"]) == 1
    assert capsys.readouterr().err.startswith("error: no results.json has 'test/linear/nope'")


def test_empty_folder_is_a_clear_error(tmp_path, capsys):
    # Encoder caches, W&B mirrors and unreadable files hold no run.
    for hidden in (".encoders/key", "wandb/run-1"):
        (tmp_path / hidden).mkdir(parents=True)
        (tmp_path / hidden / "results.json").write_text("{}")
    (tmp_path / "torn").mkdir()
    (tmp_path / "torn" / "results.json").write_text('{"test/linear/auroc": 0.')
    with pytest.raises(MedsslError, match="no results.json"):
        write_report(tmp_path)
    assert main([str(tmp_path)]) == 1
    assert "error: no results.json" in capsys.readouterr().err


def test_robustness_shows_as_tables_paired_differences_and_a_severity_figure(tmp_path):
    # Runs with eval.robustness on: SimCLR loses less AUROC under corruption than supervised.
    drops = {"simclr": 0.05, "supervised": 0.15}
    for (method, frac), values in AUROCS.items():
        for seed, auroc in enumerate(values):
            path = write_job(
                tmp_path,
                f"{method},{frac},{seed}",
                method=method,
                frac=frac,
                seed=seed,
                auroc=auroc,
            )
            record = json.loads((path / "results.json").read_text())
            for severity in (1, 2, 3):
                for corruption, extra in (("noise", 0.0), ("blur", 0.02)):
                    record[f"test/linear/corrupt/{corruption}/{severity}/auroc"] = (
                        auroc - drops[method] * severity / 3 - extra
                    )
            record["test/linear/auroc_corrupt"] = auroc - drops[method] * 2 / 3 - 0.01
            record["test/linear/ece_ts_corrupt"] = 0.1
            (path / "results.json").write_text(json.dumps(record))
    markdown = write_report(tmp_path).read_text()
    table = table_under(
        markdown,
        "#### test/linear/auroc_corrupt (AUROC under corruption, mean over corruptions and severities)",
    )
    mean, half = _mean_and_half_width([a - 0.05 * 2 / 3 - 0.01 for a in AUROCS[("simclr", 0.1)]])
    assert row_of(table, "simclr").startswith(f"| simclr | **{mean:.3f} ± {half:.3f} (n=3)** |")
    paired = table_under(
        markdown, "#### test/linear/auroc_corrupt: paired difference against supervised"
    )
    assert "(won 3/3)" in row_of(paired, "simclr")  # 0.1 more robust on every seed at 10 % labels
    assert "#### test/linear/ece_ts_corrupt" in markdown
    assert "robustness_linear.png" in markdown
    assert (tmp_path / "robustness_linear.png").stat().st_size > 10_000
    # Without robustness runs the report has no such section.
    plain = tmp_path / "plain"
    label_efficiency_sweep(plain)
    assert "corrupt" not in write_report(plain).read_text()


def test_pretraining_curves_average_each_pretraining_once_by_epoch(tmp_path):
    """trainer.eval_every rows of train_log.jsonl: a table per probe and a figure; two jobs of
    one cached encoder count once; a torn last line and rows without a score are skipped."""
    curves = {  # seed -> val linear AUROC at epochs 25, 50
        0: (0.70, 0.76),
        1: (0.72, 0.80),
        2: (0.68, 0.78),
    }
    for seed, (first, last) in curves.items():
        for frac in (0.1, 1.0):  # the second job of the seed reuses the first one's encoder
            path = write_job(tmp_path, f"frac={frac},seed={seed}", frac=frac, seed=seed)
            record = json.loads((path / "results.json").read_text())
            record["pretrain/cache_key"] = f"key{seed}"
            (path / "results.json").write_text(json.dumps(record))
            rows = [
                {"epoch": 1, "loss": 5.0},
                {"epoch": 25, "eval/linear/auroc": first, "eval/knn/auroc": first - 0.1},
                {"epoch": 50, "eval/linear/auroc": last, "eval/knn/auroc": None},
            ]
            text = "\n".join(json.dumps(r) for r in rows) + '\n{"epoch": 51, "eval/lin'
            (path / "train_log.jsonl").write_text(text)
    markdown = write_report(tmp_path).read_text()
    table = table_under(markdown, "#### val/linear/auroc by pretraining epoch")
    assert table[0] == "| variant | epoch 25 | epoch 50 |"
    first, half_first = _mean_and_half_width([c[0] for c in curves.values()])
    last, half_last = _mean_and_half_width([c[1] for c in curves.values()])
    assert row_of(table, "simclr") == (
        f"| simclr | **{first:.3f} ± {half_first:.3f} (n=3)** | **{last:.3f} ± {half_last:.3f} (n=3)** |"
    )
    knn = table_under(markdown, "#### val/knn/auroc by pretraining epoch")
    assert knn[0] == "| variant | epoch 25 |"  # epoch 50 scored no kNN value
    assert (tmp_path / "pretraining_curves.png").stat().st_size > 10_000
    # Runs without the curve get no such section.
    plain = tmp_path / "plain"
    label_efficiency_sweep(plain)
    assert "Pretraining-length curves" not in write_report(plain).read_text()
    assert not (plain / "pretraining_curves.png").exists()


def test_an_ablation_sweep_is_named_and_paired_against_its_recipe_whatever_the_counts(tmp_path):
    """ablation=recipe is the baseline even when every option has as many runs and another
    option sorts first (byol_recipe)."""
    for seed in range(3):
        for ablation, auroc, blur in (
            ("byol_recipe", 0.70, "default"),
            ("no_blur", 0.75, None),
            ("recipe", 0.80 + 0.01 * seed, "default"),
        ):
            path = write_job(
                tmp_path, f"ablation={ablation},seed={seed}", seed=seed, auroc=auroc, blur=blur
            )
            record = json.loads((path / "results.json").read_text())
            record["config/ablation"] = ablation
            (path / "results.json").write_text(json.dumps(record))
            if ablation == "byol_recipe":  # another recipe: its jitter differs
                config = OmegaConf.load(path / "config.yaml")
                config.augmentation.jitter.p = 1.0
                OmegaConf.save(config, path / "config.yaml")
    markdown = write_report(tmp_path).read_text()
    table = table_under(markdown, "#### test/linear/auroc (AUROC)")
    assert [line.split(" | ")[0] for line in table[2:]] == [
        "| simclr",
        "| simclr, ablation=byol_recipe",
        "| simclr, ablation=no_blur",
    ]
    paired = table_under(markdown, "#### test/linear/auroc: paired difference against simclr")
    mean, half = _mean_and_half_width([0.75 - (0.80 + 0.01 * s) for s in range(3)])
    assert row_of(paired, "simclr, ablation=no_blur") == (
        f"| simclr, ablation=no_blur | {mean:+.3f} ± {half:.3f} (won 0/3) |"
    )


def test_figures_tell_several_supervised_variants_apart_and_keep_them_black():
    from medssl.study.report.figures import line_style
    from medssl.study.report.variants import Variant

    variants = [
        Variant("simclr"),
        Variant("supervised", ("augmentation=finetune",)),
        Variant("supervised", ("augmentation=medical",)),
        Variant("supervised", ("augmentation=none",)),
        Variant("vicreg"),
    ]
    styles = [line_style(v, variants) for v in variants]
    supervised = styles[1:4]
    assert {colour for colour, _ in supervised} == {"black"}
    assert len({style for _, style in supervised}) == 3
    assert styles[0][0] != styles[4][0] and "black" not in (styles[0][0], styles[4][0])
    assert line_style(Variant("supervised"), [Variant("supervised")]) == ("black", "-")
