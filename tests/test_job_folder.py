"""Sweep job folders: named by their overrides, shortened with a digest past a file system's limit."""

from __future__ import annotations

from medssl.job_folder import MAX_NAME_BYTES, job_folder_name


def test_a_short_name_is_kept_exactly():
    name = "label_frac=0.1,method=simclr,seed=0"
    assert job_folder_name(name) == name


def test_a_long_name_fits_one_folder_and_keeps_its_jobs_apart(tmp_path):
    base = "augmentation=simclr_equalize_sharpness,method.loss.temperature=0.24064465970250715," * 3
    first, second = job_folder_name(base + "seed=0"), job_folder_name(base + "seed=1")
    assert first != second
    assert len(first.encode()) <= MAX_NAME_BYTES and first.startswith(base[:100])
    (tmp_path / first).mkdir()  # the file system takes it
    assert job_folder_name(base + "seed=0") == first  # the same job finds its folder again


def test_a_multibyte_name_is_cut_on_a_character(tmp_path):
    name = "dataset.name=" + "é" * 200
    short = job_folder_name(name)
    assert len(short.encode()) <= MAX_NAME_BYTES
    (tmp_path / short).mkdir()
