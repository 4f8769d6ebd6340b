"""The encoder cache key holds exactly what shapes pretraining; an SSL encoder does not depend
on the labelled subset; strict JSON; a finished job is skipped only for its own config."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from medssl.atomic_files import write_json
from medssl.data.intensity import IntensityMapping
from medssl.data.medmnist_source import load_medmnist
from medssl.data.splits import Split
from medssl.errors import MedsslError
from medssl.run import run
from medssl.study.run_record import completed_results, config_hash
from tests.conftest import TINY, compose_config, key_of


@pytest.fixture(scope="module")
def breast(medmnist_root):
    return load_medmnist(
        "breastmnist",
        28,
        str(medmnist_root),
        False,
        positive_class=0,
        references=[],
        store_dir=None,
    )


def test_key_ignores_what_only_evaluation_sees(breast):
    base = key_of([], breast)
    for same in (
        ["label_frac=0.5"],
        ["label_seed=7"],
        ["eval=knn"],
        ["eval_outputs.figures=false"],
        ["trainer.eval_batch_size=64"],
        ["trainer.online_probe=false"],
        ["cache.dir=/elsewhere"],
        ["hydra.run.dir=/tmp/x"],
    ):
        assert key_of(same, breast) == base, same


def test_key_changes_with_everything_that_shapes_pretraining(breast):
    base = key_of([], breast)
    for other in (
        ["seed=1"],
        ["method=vicreg"],
        ["backbone.width=16"],
        ["augmentation.blur=null"],
        ["optimizer.base_lr=0.01"],
        ["scheduler.warmup_epochs=0"],
        ["trainer.epochs=2"],
        ["trainer.batch_size=64"],
        ["trainer.accumulate_steps=2"],
    ):
        assert key_of(other, breast) != base, other


def test_label_using_methods_key_on_their_labelled_subset(breast):
    keys = {key_of(["method=supervised", f"label_frac={f}"], breast) for f in (0.1, 0.5, 1.0)}
    assert len(keys) == 3


def test_key_changes_with_the_pretraining_images(breast, medmnist_root):
    other = load_medmnist(
        "breastmnist",
        28,
        str(medmnist_root),
        False,
        positive_class=0,
        references=[],
        store_dir=None,
    )
    assert other.train.digest is not None  # the store's: the split is not read to key it
    images = other.train.images.clone()
    images[0, 0, 0, 0] ^= 1  # one pixel of one image
    other.train = Split(images, other.train.labels)
    assert key_of([], other) != key_of([], breast)


@pytest.mark.integration
def test_ssl_encoder_is_bit_identical_whatever_the_label_fraction(
    tmp_path, medmnist_root, monkeypatch
):
    """Trained three times without the cache, with the online probe reading different
    labelled subsets or switched off: the encoders must agree bit for bit, so sharing one
    across fractions (and leaving the probe out of the key) is exact."""
    monkeypatch.setenv("MEDMNIST_ROOT", str(medmnist_root))
    states = []
    for frac, probe in ((0.05, True), (0.5, True), (0.5, False)):
        cfg = compose_config(
            [*TINY, "trainer.epochs=2", f"label_frac={frac}", "cache.enabled=false"]
            + ["eval_outputs.figures=false", f"trainer.online_probe={probe}"]
        )
        run_dir = tmp_path / f"run_{frac}_{probe}"
        results = run(cfg, run_dir)
        assert results["pretrain/reused"] is False
        assert (results["pretrain/val_probe_acc"] is not None) == probe
        states.append(torch.load(run_dir / "encoder.pt", weights_only=True)["state_dict"])
    first = states[0]
    for other in states[1:]:
        assert first.keys() == other.keys()
        for name in first:
            assert torch.equal(first[name], other[name]), name


def test_results_json_is_strict_json(tmp_path):
    write_json(
        tmp_path / "r.json", {"a": float("nan"), "b": [float("inf"), 1.5], "c": torch.tensor(2.0)}
    )
    text = (tmp_path / "r.json").read_text()

    def refuse(constant):
        raise ValueError(constant)

    assert json.loads(text, parse_constant=refuse) == {"a": None, "b": [None, 1.5], "c": 2.0}


def test_a_finished_job_is_skipped_only_for_the_config_that_wrote_it(tmp_path):
    cfg = compose_config(TINY)
    write_json(tmp_path / "results.json", {"run/config_hash": config_hash(cfg), "x": 1})
    assert completed_results(tmp_path, cfg) == {"run/config_hash": config_hash(cfg), "x": 1}
    assert completed_results(tmp_path, compose_config([*TINY, "trainer.epochs=3"])) is None
    # Where the cache lives or whether jobs are skipped does not change what a job measured.
    assert completed_results(tmp_path, compose_config([*TINY, "cache.dir=/x"])) is not None
    (tmp_path / "results.json").write_text("{torn")
    assert completed_results(tmp_path, cfg) is None


def test_resuming_a_run_folder_with_other_overrides_names_them(
    tmp_path, medmnist_root, monkeypatch
):
    monkeypatch.setenv("MEDMNIST_ROOT", str(medmnist_root))
    base = [*TINY, "cache.enabled=false", "eval_outputs.figures=false"]
    run(compose_config(base), tmp_path / "run")
    with pytest.raises(MedsslError, match=r"different seed, trainer\.epochs;"):
        run(compose_config([*base, "trainer.epochs=2", "seed=3"]), tmp_path / "run")


def test_key_changes_with_the_intensity_mapping_and_not_with_the_feed(breast):
    mapped = dataclasses.replace(
        breast,
        intensity=IntensityMapping(kind="minmax", low=0.5, high=99.5, center=None, width=None),
    )
    assert key_of([], mapped) != key_of([], breast)
    base = key_of([], breast)
    for same in (
        ["trainer.feed=streamed"],
        ["trainer.resident_budget_gib=0"],
        ["trainer.checkpoint_every=null"],
    ):
        assert key_of(same, breast) == base, same
