"""`docsum up` with the worker: its Redis from .tools/redis, or a hint when there is none."""

from __future__ import annotations

from pathlib import Path

import pytest

from docsum.local import REDIS_PORT, jobs_env
from tests.support.services import ROOT


def test_up_runs_redis_with_its_append_only_file_and_points_both_at_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    if not (ROOT / ".tools/redis/bin/redis-server").exists():
        pytest.skip("Redis is not installed (make redis)")
    env, command = jobs_env({"DOCSUM_GATEWAY_BACKENDS_FILE": "/b.json"}, tmp_path)
    assert command is not None
    args = dict(zip(command[1::2], command[2::2], strict=False))
    assert args["--appendonly"] == "yes" and args["--bind"] == "127.0.0.1"
    assert args["--port"] == str(REDIS_PORT) and args["--dir"] == str(tmp_path / "redis")
    url = f"redis://127.0.0.1:{REDIS_PORT}/0"
    assert env["DOCSUM_GATEWAY_REDIS_URL"] == env["DOCSUM_WORKER_REDIS_URL"] == url
    assert env["DOCSUM_WORKER_BACKENDS_FILE"] == "/b.json"


def test_up_without_redis_runs_no_worker_and_an_external_one_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no .tools/redis here
    env, command = jobs_env({}, tmp_path)
    assert command is None and "DOCSUM_WORKER_REDIS_URL" not in env
    external = {"DOCSUM_GATEWAY_REDIS_URL": "redis://cache:6379/2"}
    env, command = jobs_env(external, tmp_path)
    assert command is None and env["DOCSUM_WORKER_REDIS_URL"] == "redis://cache:6379/2"
