"""Sweeps through the real launcher plugins: joblib's process pool runs jobs at the same time,
each with its share of the cores; submitit's local executor runs a job of two tasks training one
model (as a SLURM job with two GPUs would); the SLURM launcher's submission carries one task per
GPU and requeues through submitit's checkpoint hook (with stand-ins for sbatch, srun and scontrol:
no cluster on this machine). submitit-local with one task per job is exercised by
tests/study/test_study.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import joblib
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.plugins import Plugins
from hydra.experimental.callback import Callback
from hydra.types import HydraContext

from medssl.errors import MedsslError
from medssl.training.device import cpu_threads_per_job
from tests.conftest import CONF, REPO, write_fake_medmnist

TINY = ["backbone=smallcnn", "trainer.epochs=1", "eval_outputs.figures=false"]


def multirun(tmp_path, medmnist_root, *args, env=None):
    cmd = [
        sys.executable,
        str(REPO / "train.py"),
        "-m",
        *TINY,
        *args,
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
    ]
    env = {**os.environ, "MEDMNIST_ROOT": str(medmnist_root), **(env or {})}
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    return [json.loads(p.read_text()) for p in sorted((tmp_path / "sweep").glob("*/results.json"))]


class JobClock(Callback):
    """A Hydra callback that records when each job of a sweep ran and the torch threads its task
    left set. A job first waits (a minute at most) until `jobs` jobs have started: jobs that run
    at the same time then overlap however loaded the machine is, and jobs run one after another
    do not."""

    def __init__(self, folder: str, jobs: int) -> None:
        self.folder, self.jobs = Path(folder), jobs

    def on_job_start(self, config, **kwargs) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / f"started-{config.hydra.job.num}").touch()
        deadline = time.monotonic() + 60
        while len(list(self.folder.glob("started-*"))) < self.jobs:
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.started = time.time()

    def on_job_end(self, config, job_return, **kwargs) -> None:
        import torch

        record = {"start": self.started, "end": time.time(), "threads": torch.get_num_threads()}
        (self.folder / f"job-{config.hydra.job.num}.json").write_text(json.dumps(record))


@pytest.mark.integration
def test_joblib_pool_runs_two_jobs_at_once_each_with_its_share_of_the_cores(tmp_path):
    write_fake_medmnist(tmp_path / "medmnist", "breastmnist", n=48)
    clock = tmp_path / "clock"
    share = max(1, joblib.cpu_count() // 2)  # n_jobs=2 jobs share this machine's cores
    # Workers would otherwise start with joblib's own share: a thread count the task did not set.
    unset = {name: str(share + 1) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    results = multirun(
        tmp_path,
        tmp_path / "medmnist",
        "hydra/launcher=joblib_pool",
        "hydra.launcher.n_jobs=2",
        "+hydra.callbacks.clock._target_=tests.study.test_launchers.JobClock",
        f"+hydra.callbacks.clock.folder={clock}",
        "+hydra.callbacks.clock.jobs=2",
        "trainer.batch_size=16",
        "label_frac=0.5",
        "seed=0,1",
        env={**unset, "PYTHONPATH": str(REPO)},
    )
    assert sorted(r["seed"] for r in results) == [0, 1]
    jobs = [json.loads((clock / f"job-{n}.json").read_text()) for n in (0, 1)]
    assert max(j["start"] for j in jobs) < min(j["end"] for j in jobs), jobs  # at the same time
    assert [j["threads"] for j in jobs] == [share, share]


@pytest.mark.integration
def test_submitit_job_with_two_tasks_trains_one_model_with_ddp(tmp_path):
    write_fake_medmnist(tmp_path / "medmnist", "breastmnist", n=48)
    results = multirun(
        tmp_path,
        tmp_path / "medmnist",
        "hydra/launcher=local",
        "hydra.launcher.tasks_per_node=2",
        "hydra.launcher.timeout_min=10",  # a hung rendezvous must not outlive the test
        "trainer.batch_size=16",
        "label_frac=0.5",
    )
    (result,) = results  # one job, two processes, one results.json from rank 0
    assert result["world_size"] == 2 and 0.0 <= result["test/linear/auroc"] <= 1.0


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch) -> Path:
    """`sbatch` accepts any script as job 4242, `srun` exists, `scontrol` logs its arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    scripts = {
        "sbatch": 'echo "Submitted batch job 4242"',
        "srun": "exit 0",
        "scontrol": f'echo "$@" >> {tmp_path / "scontrol.log"}',
    }
    for name, body in scripts.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return tmp_path / "scontrol.log"


def test_slurm_launcher_submits_one_task_per_gpu_and_requeues_through_the_checkpoint_hook(
    tmp_path, fake_slurm, monkeypatch
):
    import submitit
    from hydra._internal.callbacks import Callbacks
    from submitit.core.job_environment import SignalHandler

    from medssl.cli.train import train

    monkeypatch.setattr(submitit.SlurmJob, "results", lambda job: [job])  # no waiting on sacct
    overrides = ["hydra/launcher=slurm", "hydra.launcher.gpus_per_node=4"]
    overrides += [f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides, return_hydra_config=True)
        context = HydraContext(GlobalHydra.instance().hydra.config_loader, Callbacks(cfg))
        launcher = Plugins.instance().instantiate_launcher(
            hydra_context=context, task_function=train.__wrapped__, config=cfg
        )
        (job,) = launcher.launch([["seed=3"]], initial_job_idx=0)

    # What sbatch was given: four tasks on four GPUs, and the signal that starts a requeue.
    sbatch = job.paths.submission_file.read_text().splitlines()
    slurm = cfg.hydra.launcher
    for line in (
        "--ntasks-per-node=4",
        "--gpus-per-node=4",
        f"--signal=USR2@{slurm.signal_delay_s}",
        f"--time={slurm.timeout_min}",
    ):
        assert f"#SBATCH {line}" in sbatch, line
    submitted = submitit.helpers.DelayedSubmission.load(job.paths.submitted_pickle)
    assert submitted.function.params["tasks_per_node"] == 4
    assert submitted._timeout_countdown == slurm.max_num_timeout == 3

    # SLURM preempts task 0 of job 4242 with USR2: submitit's handler asks the launched
    # callable for its checkpoint, stores what it returns as the job, and requeues the job.
    for name, value in {"SUBMITIT_EXECUTOR": "slurm", "SLURM_JOB_ID": "4242"}.items():
        monkeypatch.setenv(name, value)
    for name in ("SLURM_PROCID", "SLURM_LOCALID", "SLURM_NODEID"):
        monkeypatch.setenv(name, "0")
    handler = SignalHandler(submitit.JobEnvironment(), job.paths, submitted)
    with pytest.raises(SystemExit):
        handler.checkpoint_and_try_requeue(signal.SIGUSR2)
    assert fake_slurm.read_text().split() == ["requeue", "4242"]
    requeued = submitit.helpers.DelayedSubmission.load(job.paths.submitted_pickle)
    # The same launcher (its class travels by value in the pickle, so compare by name).
    assert type(requeued.function).__qualname__ == type(launcher).__qualname__ == "SlurmLauncher"
    assert requeued.function.params == launcher.params
    assert requeued.args[:4] == (["seed=3"], "hydra.sweep.dir", 0, "job_id_for_0")
    assert requeued.function.config.hydra.sweep.dir == str(tmp_path / "sweep")  # its own folder
    assert requeued._timeout_countdown == 3  # a preemption spends none of the timeouts


@pytest.mark.parametrize(
    ("n_jobs", "cores", "threads"),
    [(None, 16, None), (2, 16, 8), (3, 2, 1), (-1, 8, 1), (-2, 8, 1)],
)
def test_parallel_jobs_share_the_cores(n_jobs, cores, threads):
    assert cpu_threads_per_job(n_jobs, cpu_count=cores) == threads


def test_zero_jobs_is_a_clear_error():
    with pytest.raises(MedsslError, match="n_jobs=0"):
        cpu_threads_per_job(0, cpu_count=4)
