"""Torch threads follow the CPUs a container may use, not the node's core count."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from docsum.common.torch_device import cpu_quota, usable_cpus


def _cgroup(tmp_path: Path, v2: str | None = None, v1: tuple[str, str] | None = None) -> Path:
    if v2 is not None:
        (tmp_path / "cpu.max").write_text(v2 + "\n")
    if v1 is not None:
        (tmp_path / "cpu").mkdir()
        (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text(v1[0] + "\n")
        (tmp_path / "cpu" / "cpu.cfs_period_us").write_text(v1[1] + "\n")
    return tmp_path


@pytest.mark.parametrize(
    ("v2", "v1", "quota"),
    [
        ("150000 100000", None, 1.5),  # cgroup v2: limits.cpu "1500m"
        ("max 100000", None, None),  # no limit
        (None, ("200000", "100000"), 2.0),  # cgroup v1
        (None, ("-1", "100000"), None),
        (None, None, None),  # no cgroup files at all
        ("garbage", None, None),
    ],
)
def test_the_cpu_limit_is_read_from_either_cgroup_version(
    tmp_path: Path, v2: str | None, v1: tuple[str, str] | None, quota: float | None
) -> None:
    assert cpu_quota(_cgroup(tmp_path, v2, v1)) == quota


def test_threads_are_capped_by_the_limit_rounded_up(tmp_path: Path) -> None:
    cpus = len(os.sched_getaffinity(0))
    for name, limit, threads in [
        ("none", None, cpus),
        ("half", "50000 100000", 1),  # half a CPU: one thread
        ("above", "6400000 100000", cpus),  # a limit above what the process may run on
    ]:
        (tmp_path / name).mkdir()
        assert usable_cpus(_cgroup(tmp_path / name, limit)) == threads, name
    if cpus >= 2:
        (tmp_path / "one-and-a-half").mkdir()
        assert usable_cpus(_cgroup(tmp_path / "one-and-a-half", "150000 100000")) == 2
