"""Every example of the README and of docs/api.md runs as written from a fresh clone: its curl
calls and ``docsum`` command lines, on the files of examples/, against real servers on test
ports.

A "fresh clone" is a folder holding the git-tracked files of examples/ only (no ../shared, no
.runs/, no untracked file), where each example runs with the README's own environment: the API
key in ``DOCSUM_API_KEY``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import GATEWAY_KEY, ROOT, LiveService
from tests.support.jobs import RedisServer, start_jobs
from tests.support.stack import stable_backends

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DOCS = ("README.md", "docs/api.md")
DEFAULT_PORTS = {"gateway": "8080", "ocr": "8081", "summarizer": "8082"}


def _bash_blocks(doc: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)\n```", (ROOT / doc).read_text(), flags=re.S)


def _rewrite(text: str, ports: dict[str, int]) -> str:
    """The example as it runs here: the test ports, this interpreter's docsum, the test key."""
    for name, port in ports.items():
        text = text.replace(f"127.0.0.1:{DEFAULT_PORTS[name]}", f"127.0.0.1:{port}")
    text = text.replace(".venv/bin/docsum", f"{sys.executable} -m docsum.cli")
    return text.replace("$(cat .runs/dev-api-key)", GATEWAY_KEY)


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with what a clone has of examples/ (tracked files, as in the working tree)."""
    root = tmp_path_factory.mktemp("clone")
    tracked = subprocess.run(
        ["git", "ls-files", "examples"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert tracked, "examples/ is not in git"
    for name in tracked:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / name, root / name)
    return root


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCSUM_")}
    return {**env, "DOCSUM_API_KEY": GATEWAY_KEY}


def _run(script: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, timeout=300, cwd=cwd, env=_env()
    )


def test_examples_use_files_of_the_repository_only() -> None:
    """../shared/data is named for the benchmark sets (docsum eval) only."""
    for doc in DOCS:
        for block in _bash_blocks(doc):
            for line in block.splitlines():
                if "../shared" in line:
                    assert " eval " in line, f"{doc}: {line}"


def test_examples_are_what_make_examples_writes() -> None:
    done = subprocess.run(
        [sys.executable, "scripts/make_examples.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_examples(
    clone: Path,
    gateway_service: LiveService,
    ocr_service: LiveService,
    summarizer_service: LiveService,
) -> None:
    """Every curl example of both documents."""
    ports = {
        "gateway": gateway_service.port,
        "ocr": ocr_service.port,
        "summarizer": summarizer_service.port,
    }
    routes = set()
    for doc in DOCS:
        for block in _bash_blocks(doc):
            if not block.startswith("curl "):
                continue
            out = _run(_rewrite(block, ports), clone)
            assert out.returncode == 0, f"{doc}: {block}\n{out.stderr}"
            body = json.loads(out.stdout)
            assert "error" not in body, (doc, block, body)
            route = re.search(r"127\.0\.0\.1:\d+(/[a-z0-9/:]+)", block)
            assert route is not None
            routes.add(route.group(1))
            if "documents:summarize" in block:
                assert body["summary"] and [p["source"] for p in body["pages"]] == ["ocr", "ocr"]
            elif "/ocr" in block:
                assert body["text"] and body["pages"][0]["lines"] and body["model"]["name"]
            else:
                assert body["summary"] and body["sentences"] and body["model"]["name"]
    assert routes == {
        "/v1/summarize",
        "/v1/ocr",
        "/api/v1/summarize",
        "/api/v1/ocr",
        "/api/v1/documents:summarize",
    }


@pytest.fixture(scope="module")
def jobs_gateway(
    tmp_path_factory: pytest.TempPathFactory,
    redis_server: RedisServer,
    ocr_service: LiveService,
    summarizer_service: LiveService,
) -> Iterator[LiveService]:
    """A gateway on Redis with one worker, over the session's OCR and summarizer."""
    jobs = start_jobs(
        tmp_path_factory.mktemp("readme-jobs"),
        redis_server.empty_db(15),
        stable_backends(ocr_service, summarizer_service),
    )
    jobs.start_worker()
    yield jobs.gateway
    jobs.stop()


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_async_examples(clone: Path, jobs_gateway: LiveService) -> None:
    """The async example of both documents: submit, then wait (asked again while not done)."""
    ran = 0
    for doc in DOCS:
        for block in _bash_blocks(doc):
            if "summarizeAsync" not in block:
                continue
            script = _rewrite(block, {"gateway": jobs_gateway.port})
            submit, wait = script.splitlines()
            out = _run(f'{submit}\necho "$op"', clone)
            assert out.returncode == 0 and out.stdout.startswith("operations/"), out.stderr
            op = out.stdout.strip()
            for _ in range(10):  # each ask waits up to 50 s
                body = json.loads(_run(f"op={op}\n{wait}", clone).stdout)
                if body["done"]:
                    break
            assert body["done"] and body["metadata"]["state"] == "succeeded", (doc, body)
            assert body["response"]["summary"], body
            assert [p["source"] for p in body["response"]["pages"]] == ["ocr", "ocr"]
            ran += 1
    assert ran == len(DOCS)


def _docsum_lines(block: str) -> tuple[list[str], list[str]]:
    """(export lines, command lines on examples/) of a block of ``docsum`` examples."""
    exports = [line for line in block.splitlines() if line.startswith("export ")]
    commands = [line for line in block.splitlines() if "docsum" in line and "examples/" in line]
    return exports, commands


def test_docsum_examples(clone: Path, gateway_service: LiveService) -> None:
    """Every ``docsum`` line on examples/: the local ones (models in the process) and the
    client ones (through the test gateway)."""
    ports = {"gateway": gateway_service.port}
    ran = []
    for doc in DOCS:
        for block in _bash_blocks(doc):
            exports, commands = _docsum_lines(block)
            for command in commands:
                script = "\n".join([*exports, command])
                out = _run(_rewrite(script, ports), clone)
                assert out.returncode == 0, f"{doc}: {command}\n{out.stderr}"
                assert "Traceback" not in out.stderr
                written = re.search(r"> (\S+)", command.split("#")[0])
                produced = (clone / written.group(1)).read_text() if written else out.stdout
                assert produced.strip(), f"{doc}: {command} wrote nothing"
                ran.append(command)
    assert any("--url" in c for c in ran) and any("document " in c for c in ran)
    assert any(c.startswith(".venv/bin/docsum ocr") for c in ran)
