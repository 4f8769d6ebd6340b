"""A submitit job of several tasks (`hydra/launcher=slurm hydra.launcher.gpus_per_node=4`) becomes
torchrun's variables in each task, read from submitit's real job environment. The real two-task
sweep through submitit's local executor is in tests/study/test_launchers.py."""

from __future__ import annotations

import os

import pytest

from medssl.training.distributed import master_port, process_rank

TORCHRUN_VARS = (
    "MASTER_ADDR",
    "MASTER_PORT",
    "RANK",
    "WORLD_SIZE",
    "LOCAL_RANK",
    "LOCAL_WORLD_SIZE",
)


@pytest.fixture
def local_task(monkeypatch):
    """The environment submitit's local executor gives task `rank` of a job of `ntasks`."""

    # A private copy of the environment: the variables a task exports must not reach later
    # tests, where a stray WORLD_SIZE would make an in-process run wait for a second process.
    monkeypatch.setattr(os, "environ", dict(os.environ))

    def enter(rank: int, ntasks: int, job_id: str = "4242") -> None:
        for name in TORCHRUN_VARS:
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("SUBMITIT_EXECUTOR", "local")
        for name, value in {
            "SUBMITIT_LOCAL_JOB_ID": job_id,
            "SUBMITIT_LOCAL_NTASKS": str(ntasks),
            "SUBMITIT_LOCAL_JOB_NUM_NODES": "1",
            "SUBMITIT_LOCAL_NODEID": "0",
            "SUBMITIT_LOCAL_GLOBALID": str(rank),
            "SUBMITIT_LOCAL_LOCALID": str(rank),
        }.items():
            monkeypatch.setenv(name, value)

    return enter


def test_a_task_of_a_two_task_job_gets_torchruns_variables(local_task):
    local_task(rank=1, ntasks=2)
    assert process_rank() == 1
    assert os.environ["WORLD_SIZE"] == "2" and os.environ["LOCAL_RANK"] == "1"
    assert os.environ["LOCAL_WORLD_SIZE"] == "2"
    assert os.environ["MASTER_PORT"] == str(master_port("4242")) == "24242"
    assert os.environ["MASTER_ADDR"]  # this host, the job's only one


def test_a_one_task_job_and_torchrun_are_left_alone(local_task, monkeypatch):
    local_task(rank=0, ntasks=1)
    assert process_rank() == 0 and "WORLD_SIZE" not in os.environ
    local_task(rank=1, ntasks=2)
    monkeypatch.setenv("WORLD_SIZE", "4")  # torchrun inside the job: its variables stand
    monkeypatch.setenv("RANK", "3")
    assert process_rank() == 3 and "MASTER_PORT" not in os.environ


def test_master_port_is_stable_and_in_range():
    assert master_port("123") == 20123 and master_port("20123") == 20123
    array_ports = {master_port(f"5000_{task}") for task in range(50)}
    assert len(array_ports) == 50 and all(20000 <= p < 40000 for p in array_ports)
    assert master_port("5000_7") == master_port("5000_7")
