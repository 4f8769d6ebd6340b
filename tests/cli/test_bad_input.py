"""Bad input: one sentence, the exit status, no traceback anywhere, and nothing written lost.

Every input users were seen to get wrong (issue 34, and the earlier bad-input tests of train.py
and medssl.cli.evaluate) is one case of `test_bad_input`. Each runs in this process through the
function its CLI's main calls (`run_job`, `evaluate_checkpoint`, `preview.main`, ...): a new
interpreter per case would cost 10 s of imports (tests/test_rerun_safety.py drives the real
CLIs). A case in a finished run folder (`where="{finished}"`) runs in a copy of one finished
run and, where it is refused, must leave results.json, encoder.pt, config.yaml and the
checkpoint byte for byte as they were, and write no error.json.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import shutil
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException, MissingConfigException

import medssl.cli.evaluate  # noqa: F401  registers the `evaluate` config
import medssl.cli.train  # noqa: F401  registers the `train` config
from medssl.cli import preview
from medssl.cli import report as sweep_report
from medssl.cli.evaluate import evaluate_checkpoint
from medssl.cli.inspect import inspect_dataset
from medssl.errors import run_or_exit
from medssl.run import run
from medssl.study.folder_guard import FolderGuard
from medssl.study.job import run_job
from tests.cli.conftest import save_encoder
from tests.conftest import CONF, compose_config

TINY = [
    "backbone=smallcnn",
    "trainer.epochs=1",
    "trainer.batch_size=128",
    "cache.enabled=false",
    "eval_outputs.figures=false",
]
# What a finished folder holds that no refused or failed input may change.
RECORD = ("results.json", "encoder.pt", "config.yaml", "checkpoints/last.pt")
FOLDER = ["dataset.size=28", "dataset.channels=1", "dataset.cache=false", "label_frac=1.0"]

# Real runs end to end (training, evaluation, a finished run folder): not the unit loop.
pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Case:
    cli: str  # train | evaluate | preview | inspect | report | hint | guard | compose
    args: tuple[str, ...]
    says: str  # part of the one sentence
    status: int = 1
    where: str = "{run}"  # the run folder; "{finished}": a copy of a finished run
    prepare: str | None = None  # what is done to that folder first (PREPARE)
    keeps: bool = False  # the finished record must stay byte for byte
    stop: int | None = None  # a signal sent to this process during evaluation


def case(cli, args, says, **kw) -> Case:
    return Case(cli, tuple(args.split()) if isinstance(args, str) else tuple(args), says, **kw)


CASES = {
    # Budget, device and label fraction (the first bad-input tests).
    "epochs_0": case("train", "trainer.epochs=0", "trainer.epochs must be at least 1, got 0."),
    "epochs_neg": case("train", "trainer.epochs=-2", "trainer.epochs must be at least 1, got -2."),
    "fp16_on_cpu": case("train", "trainer.precision=fp16", "precision=fp16 needs a CUDA device"),
    "cuda_absent": case("train", "trainer.device=cuda", "no CUDA device is visible"),
    "batch_too_big": case(
        "train",
        "trainer.batch_size=1000",
        "trainer.batch_size=1000 is larger than the 546 pretraining images",
    ),
    "label_frac_0": case("train", "label_frac=0", "label_frac must lie in (0, 1]"),
    "label_frac_big": case("train", "label_frac=1.5", "label_frac must lie in (0, 1]"),
    "label_frac_tiny": case("train", "label_frac=0.001", "without a labelled image"),
    # Values checked inside components or libraries (issue 34, defect 4).
    "seed_neg": case("train", "seed=-1", "seed must be a whole number 0 or more, got -1."),
    "label_seed_neg": case("train", "label_seed=-1", "label_seed must be a whole number 0 or"),
    "base_lr_neg": case("train", "optimizer.base_lr=-1", "optimizer.base_lr=-1"),
    "temperature_0": case(
        "train", "method.loss.temperature=0", "method.loss.temperature=0 (NTXentLoss)"
    ),
    "blur_p_2": case("train", "augmentation.blur.p=2", "augmentation.blur.p=2 (GaussianBlur)"),
    "finetune_epochs_neg": case(
        "train", "eval=[linear,finetune] eval.finetune.epochs=-1", "eval.finetune.epochs=-1"
    ),
    "knn_k_0": case("train", "eval=[knn] eval.knn.k=0", "eval.knn.k=0 (KNNClassifier)"),
    "eval_outputs_typo": case("train", "+eval_outputs.camm=true", "eval_outputs.camm=True"),
    # Labels that cannot be evaluated (defect 3), refused before pretraining.
    "one_class_folder": case(
        "train",
        ["dataset=image_folder", "dataset.root={one_class}", *FOLDER],
        "has only class 'a'",
    ),
    "one_class_csv": case(
        "train", ["dataset=csv", "dataset.root={one_class_csv}", *FOLDER], "has only class 'a'"
    ),
    "one_class_val": case(
        "train",
        ["dataset=image_folder", "dataset.root={one_class_val}", *FOLDER],
        "the val split of dataset 'one_class_val' (4 images) holds no image of class 'b'",
    ),
    "val_lacks_one_of_three": case(  # macro averages stay defined: a warning, then the metrics
        "train",
        ["dataset=image_folder", "dataset.root={three_classes}", *FOLDER, "trainer.batch_size=8"],
        "holds no image of class 'c'; its macro-averaged metrics cover the 2 classes present",
        status=0,
    ),
    "dataset_root_missing": case(
        "train", ["dataset=image_folder", "dataset.root={run}/absent", *FOLDER], "is not a folder"
    ),
    # Where the run writes (defect 5).
    "run_dir_under_file": case("train", "", "{file} is a file, not a folder", where="{file}/R"),
    # Reruns in a finished folder (defects 1, 2, 6 and 8).
    "rerun_label_frac_0": case(
        "train", "label_frac=0", "different label_frac", where="{finished}", keeps=True
    ),
    "rerun_other_temperature": case(
        "train",
        "method.loss.temperature=0.33",
        "holds the finished results of another configuration (different method.loss.temperature)",
        where="{finished}",
        keeps=True,
    ),
    "rerun_other_seed": case(
        "train", "seed=1", "another configuration (different seed)", where="{finished}", keeps=True
    ),
    "resume_other_temperature": case(
        "train",
        "method.loss.temperature=0.5",
        "checkpoints/last.pt was written by a run with different method.loss.temperature;",
        where="{finished}",
        prepare="unfinished",
        keeps=True,
    ),
    "resume_torn_checkpoint": case(
        "train",
        "skip_done=false",
        "cannot read checkpoint",
        where="{finished}",
        prepare="torn_checkpoint",
        keeps=True,
    ),
    "disk_full_at_first_write": case(
        "train", "", "could not write {run}/config.yaml: the disk is full", prepare="no_space"
    ),
    "disk_full_on_rerun": case(
        "train",
        "skip_done=false",
        "the disk is full",
        where="{finished}",
        prepare="disk_full",
        keeps=True,
    ),
    "sigterm_in_evaluation": case(
        "train",
        "skip_done=false",
        "stopped by SIGTERM while evaluating; the encoder is saved",
        status=143,
        where="{finished}",
        keeps=True,
        stop=signal.SIGTERM,
    ),
    "ctrl_c_in_evaluation": case(
        "train",
        "skip_done=false",
        "stopped by SIGINT while evaluating",
        status=130,
        where="{finished}",
        keeps=True,
        stop=signal.SIGINT,
    ),
    "random_bytes_results": case(
        "train", "", "is unreadable", status=0, where="{finished}", prepare="random_results"
    ),
    # Hydra writes .hydra/ before the task: the callback refuses first (defects 1, 2 and 5).
    "guard_rerun_label_frac_0": case(
        "guard", "label_frac=0", "different label_frac", where="{finished}", keeps=True
    ),
    "guard_run_dir_under_file": case("guard", "", "is a file, not a folder", where="{file}/R"),
    "guard_disk_full": case("guard", "", "cannot be written: the disk holding", prepare="no_room"),
    "guard_evaluate_training_folder": case(
        "guard",
        ["--evaluate", "ckpt={finished}/encoder.pt", "eval=[knn]"],
        "holds the results of a training run, which medssl.cli.evaluate never replaces",
        where="{finished}",
        keeps=True,
    ),
    # Names Hydra refuses at composition (train.py prints Hydra's lines, no traceback).
    "unknown_key": case("compose", "seeed=3", "Could not override 'seeed'"),
    "unknown_nested_key": case("compose", "trainer.epoch=3", "Could not override 'trainer.epoch'"),
    "unknown_option": case("compose", "method=bogus", "Could not find 'method/bogus'"),
    "unselected_protocol": case(
        "hint",
        "eval.finetune.epochs=-1",
        "eval.finetune.epochs=-1 sets the finetune protocol, which is not selected "
        "(eval=[linear]); select it too: 'eval=[linear,finetune]'",
    ),
    "unselected_knn": case("hint", "eval.knn.k=3", "'eval=[linear,knn]'"),
    # medssl.cli.evaluate (the earlier CLI test's inputs, and the training folder of defect 2).
    "evaluate_no_ckpt": case("evaluate", "", "pass the encoder to evaluate"),
    "evaluate_missing_ckpt": case("evaluate", "ckpt={run}/missing.pt", "does not exist"),
    "evaluate_junk_ckpt": case("evaluate", "ckpt={junk}", "could not be read as an encoder"),
    "evaluate_size_mismatch": case("evaluate", "ckpt={enc64}", "takes 1-channel 64 px images"),
    "evaluate_other_backbone": case(
        "evaluate",
        "ckpt={enc28} backbone=resnet18",
        "holds a smallcnn encoder but backbone resnet18 was asked for",
    ),
    "evaluate_forged_weights": case(
        "evaluate", "ckpt={forged}", "do not fit the backbone it names"
    ),
    "evaluate_seed_neg": case("evaluate", "ckpt={enc28} seed=-1", "seed must be a whole number"),
    "evaluate_one_class": case(
        "evaluate",
        ["ckpt={enc28}", "dataset=image_folder", "dataset.root={one_class}", *FOLDER],
        "has only class 'a'",
    ),
    "evaluate_training_folder": case(
        "evaluate",
        "ckpt={finished}/encoder.pt eval=[knn]",
        "holds the results of a training run",
        where="{finished}",
        keeps=True,
    ),
    # The other CLIs (defect 7).
    "preview_bogus_augmentation": case(
        "preview", "augmentation=bogus", "Could not find 'augmentation/bogus'; the options are"
    ),
    "preview_blur_p_2": case("preview", "augmentation.blur.p=2", "augmentation.blur.p=2"),
    "preview_n_images_word": case("preview", "n_images=abc", "n_images must be a whole number"),
    "preview_unknown_key": case("preview", "seeed=1", "Could not override 'seeed'"),
    "preview_out_under_file": case("preview", "out={file}/x.png", "could not write"),
    "inspect_root_missing": case(
        "inspect", ["dataset=image_folder", "dataset.root={run}/absent", *FOLDER[:3]], "not a"
    ),
    "inspect_out_under_file": case("inspect", "out={file}/x", "could not write"),
    "report_missing_folder": case("report", "{run}/absent", "is not a folder"),
    "report_regular_file": case("report", "{file}", "is not a folder"),
    "report_no_runs": case("report", "{empty}", "no results.json under"),
    "report_unknown_metric": case("report", "{finished} --metric bogus/key", "no results.json has"),
}


NEEDS_NO_GPU = ("fp16_on_cpu", "cuda_absent")


@pytest.fixture(autouse=True)
def _genuine_medmnist(monkeypatch, medmnist_root):
    monkeypatch.setenv("MEDMNIST_ROOT", str(medmnist_root))


@pytest.fixture(scope="module")
def finished(tmp_path_factory, medmnist_root):
    """A finished run folder of TINY (cache off, so it holds its own checkpoint)."""
    os.environ.setdefault("MEDMNIST_ROOT", str(medmnist_root))
    folder = tmp_path_factory.mktemp("finished") / "run"
    run_job(run, compose_config(TINY), folder)
    assert all((folder / name).is_file() for name in RECORD)
    return folder


def _write_images(folder, n: int, value: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(value)
    for i in range(n):
        cv2.imwrite(str(folder / f"{i}.png"), rng.integers(0, 256, (28, 28), dtype=np.uint8))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict:
    """Folders and files the cases name: one-class datasets, encoders, a regular file."""
    root = tmp_path_factory.mktemp("inputs")
    _write_images(root / "one_class" / "train" / "a", 10, 0)
    _write_images(root / "one_class_csv", 10, 1)
    rows = "".join(f"{i}.png,a\n" for i in range(10))
    (root / "one_class_csv" / "labels.csv").write_text("filename,label\n" + rows)
    for split, classes in (("train", "ab"), ("val", "a"), ("test", "ab")):
        for k, name in enumerate(classes):
            _write_images(root / "one_class_val" / split / name, 8 if split == "train" else 4, k)
    for split, classes in (("train", "abc"), ("val", "ab"), ("test", "abc")):
        for k, name in enumerate(classes):
            _write_images(root / "three_classes" / split / name, 8 if split == "train" else 4, k)
    save_encoder(root / "enc28.pt")
    save_encoder(root / "enc64.pt", size=64)
    saved = torch.load(root / "enc28.pt", weights_only=True)
    saved["backbone"]["width"] = 16
    torch.save(saved, root / "forged.pt")
    (root / "junk.pt").write_text("not a checkpoint")
    (root / "afile").write_text("a regular file")
    (root / "empty").mkdir()
    return {
        "one_class": root / "one_class",
        "one_class_csv": root / "one_class_csv",
        "one_class_val": root / "one_class_val",
        "three_classes": root / "three_classes",
        "enc28": root / "enc28.pt",
        "enc64": root / "enc64.pt",
        "forged": root / "forged.pt",
        "junk": root / "junk.pt",
        "file": root / "afile",
        "empty": root / "empty",
    }


def _digests(folder) -> dict[str, str]:
    return {
        name: hashlib.sha256((folder / name).read_bytes()).hexdigest()
        for name in RECORD
        if (folder / name).is_file()
    }


def _prepare(name: str | None, folder, monkeypatch) -> None:
    if name == "unfinished":  # a run stopped before it wrote results.json
        (folder / "results.json").unlink()
    elif name == "torn_checkpoint":  # a node that died while copying it
        checkpoint = folder / "checkpoints" / "last.pt"
        checkpoint.write_bytes(checkpoint.read_bytes()[:1000])
    elif name == "random_results":
        (folder / "results.json").write_bytes(np.random.default_rng(0).bytes(300))
    elif name == "disk_full":  # torch's own report of a short write, on a disk with no room
        import medssl.atomic_files

        def no_room(*args, **kwargs):
            raise RuntimeError("[enforce fail at inline_container.cc:672] unexpected pos")

        monkeypatch.setattr(torch, "save", no_room)
        monkeypatch.setattr(medssl.atomic_files, "_free_bytes", lambda folder: 0)
    elif name == "no_room":  # a disk with nothing left, before Hydra writes .hydra/
        full = shutil.disk_usage(folder.parent)._replace(free=0)
        monkeypatch.setattr(shutil, "disk_usage", lambda path: full)
    elif name == "no_space":  # every atomic write meets a full disk
        import medssl.atomic_files

        def no_space(fd):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(medssl.atomic_files.os, "fsync", no_space)


def _stop_during_evaluation(monkeypatch, signum: int) -> None:
    from medssl.evaluation.linear_probe import LinearProbe

    # A job started in the background of a non-interactive shell ignores SIGINT (and medssl
    # leaves an ignored signal ignored); the case is a user at a terminal, so restore it.
    if signal.getsignal(signum) == signal.SIG_IGN:
        default = signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL
        signal.signal(signum, default)

    def signalled(self, inputs):
        # Never send a signal this process would die of: the handler must be installed.
        assert signal.getsignal(signum) not in (signal.SIG_DFL, signal.default_int_handler)
        # raise_signal delivers it to this (the main) thread: os.kill may land on another
        # thread (tqdm's monitor), leaving a sleep here uninterrupted.
        signal.raise_signal(signum)
        time.sleep(1)  # the handler runs at once; this is only never reached
        raise AssertionError("the signal did not stop evaluation")

    monkeypatch.setattr(LinearProbe, "evaluate", signalled)


def _compose(name: str, overrides: list[str], hydra_config: bool = False):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name=name, overrides=overrides, return_hydra_config=hydra_config)


def _status(call) -> int:
    try:
        result = call()
    except SystemExit as stop:
        return stop.code
    return result if isinstance(result, int) else 0


def _run_case(c: Case, args: list[str], where, monkeypatch, capsys) -> tuple[int, str]:
    """The exit status and, where the CLI prints rather than logs its sentence, that text."""
    if c.cli == "train":
        cfg = compose_config([*TINY, *args])
        return _status(lambda: run_job(run, cfg, where)), ""
    if c.cli == "guard":
        evaluate = args[:1] == ["--evaluate"]
        name = "evaluate" if evaluate else "train"
        refusal = (
            "medssl.cli.evaluate.folder_refusal" if evaluate else "medssl.study.run_record.refusal"
        )
        args = args[1:] if evaluate else [*TINY, *args]
        cfg = _compose(name, [*args, f"hydra.run.dir={where}"], hydra_config=True)
        return _status(lambda: FolderGuard(refusal).on_run_start(cfg)), ""
    if c.cli == "evaluate":
        cfg = _compose("evaluate", [*args, "trainer.precision=fp32"])
        chosen = any(a.startswith("backbone") for a in args)
        return _status(lambda: run_or_exit(evaluate_checkpoint, cfg, where, chosen)), ""
    if c.cli == "preview":
        return preview.main([f"out={where}/preview.png", *args]), ""
    if c.cli == "inspect":
        cfg = _compose("inspect", [f"out={where}", *args])
        return _status(lambda: run_or_exit(inspect_dataset, cfg)), ""
    if c.cli == "report":
        status = sweep_report.main([*args, "--out", str(where)])
        return status, capsys.readouterr().err
    if c.cli == "hint":
        monkeypatch.setattr(sys, "argv", ["train.py", *args])
        monkeypatch.setattr(logging, "raiseExceptions", logging.raiseExceptions)
        return _status(medssl.cli.train.main), ""
    if c.cli == "compose":
        with pytest.raises((ConfigCompositionException, MissingConfigException)) as refused:
            compose_config(args)
        return 1, str(refused.value).splitlines()[0]
    raise ValueError(c.cli)


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(name, tmp_path, finished, inputs, monkeypatch, capsys, caplog):
    c = CASES[name]
    if name in NEEDS_NO_GPU and torch.cuda.is_available():
        pytest.skip("refused only where no CUDA device is visible")
    paths = {**inputs, "run": tmp_path / "run", "finished": tmp_path / "R"}
    if "{finished}" in c.where or any("{finished}" in a for a in c.args):
        shutil.copytree(finished, paths["finished"])
    where = Path(c.where.format(**paths))
    args = [a.format(**paths) for a in c.args]
    _prepare(c.prepare, where, monkeypatch)
    before = _digests(where) if c.keeps else {}
    if c.stop is not None:
        _stop_during_evaluation(monkeypatch, c.stop)

    with caplog.at_level(logging.INFO):
        status, printed = _run_case(c, args, where, monkeypatch, capsys)
    captured = capsys.readouterr()
    output = caplog.text + captured.out + captured.err + printed

    assert status == c.status, output[-3000:]
    assert "Traceback" not in output
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    sentence = next((s for s in [*said, printed.strip()] if c.says.format(**paths) in s), None)
    assert sentence is not None, f"{c.says!r} not in {said + [printed]}"
    assert "\n" not in sentence.removeprefix("error: ")
    if c.keeps:
        assert _digests(where) == before
        assert not (where / "error.json").exists()
    if c.status == 0:  # the run went on to its results
        assert isinstance(json.loads((where / "results.json").read_text()), dict)
