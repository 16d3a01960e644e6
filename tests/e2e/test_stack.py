"""`make e2e`: the three images on a real container engine, deployed from the Kubernetes YAML.

Run in file order: the pod-kill test goes last (it restarts a container).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.support.documents import make_pdf
from tests.support.services import summarize_document

from .conftest import GATEWAY, Deployed
from .kube import ROOT, podman

SHARED = ROOT.parent / "shared" / "data" / "ocr" / "oldbooks-pages" / "images"
UID = 10001
#: Runs in each container: who it runs as, what it may write, what it may do.
IDENTITY = """
import json, os
def writable(path):
    try:
        with open(os.path.join(path, ".docsum-e2e"), "w"):
            pass
        os.remove(os.path.join(path, ".docsum-e2e"))
        return True
    except OSError:
        return False
status = dict(line.split(":\\t", 1) for line in open("/proc/1/status").read().splitlines())
print(json.dumps({
    "uid": os.getuid(), "gid": os.getgid(),
    "pid1_uid": status["Uid"].split()[0], "pid1_cap_eff": status["CapEff"].strip(),
    "pid1_no_new_privs": status["NoNewPrivs"].strip(),
    "writable": {p: writable(p) for p in ("/", "/opt/venv", "/etc", "/tmp")},
}))
"""


def _post(deployed: Deployed, path: str, **kwargs: object) -> httpx.Response:
    headers = {"X-API-Key": deployed.api_key}
    return httpx.post(f"{GATEWAY}{path}", headers=headers, timeout=180, **kwargs)  # type: ignore[arg-type]


def _summarize(deployed: Deployed, file: tuple[str, bytes, str], **form: str) -> dict[str, Any]:
    """The deployed gateway's answer to ``file`` on /api/v1/documents:summarize (a 200)."""
    return summarize_document(GATEWAY, file, {"X-API-Key": deployed.api_key}, 180, **form)


def test_every_container_is_non_root_read_only_and_ready(deployed: Deployed) -> None:
    assert {c.name for c in deployed.stack.containers} == {"gateway", "ocr", "summarizer"}
    for c in deployed.stack.containers:
        info = deployed.stack.inspect(c)
        assert info["HostConfig"]["ReadonlyRootfs"] is True, c.name
        assert not info.get("EffectiveCaps"), f"{c.name}: capabilities {info['EffectiveCaps']}"
        proc = deployed.stack.exec(c, "python3", "-c", IDENTITY)
        assert proc.returncode == 0, proc.stderr
        seen = json.loads(proc.stdout)
        assert (seen["uid"], seen["gid"], int(seen["pid1_uid"])) == (UID, UID, UID), c.name
        assert int(seen["pid1_cap_eff"], 16) == 0, c.name
        assert seen["pid1_no_new_privs"] == "1", c.name
        assert seen["writable"] == {"/": False, "/opt/venv": False, "/etc": False, "/tmp": True}
        ok, detail = deployed.stack.probe(c)
        assert ok, detail
    print(f"ready after (s): {deployed.ready_s}")


@pytest.mark.parametrize("image", ["gateway", "ocr", "summarizer"])
def test_image_starts_without_any_network(image: str, tmp_path: Path) -> None:
    """The weights are inside: with no network at all the model services turn ready."""
    tag = subprocess.run(
        [
            "python3",
            "-c",
            "import tomllib;print(tomllib.load(open('pyproject.toml','rb'))['project']['version'])",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    port = {"gateway": 8080, "ocr": 8081, "summarizer": 8082}[image]
    # The gateway is ready only with a backend; with none it must still come up and say so.
    path, want = ("/livez", 200) if image == "gateway" else ("/readyz", 200)
    name = f"docsum-e2e-offline-{image}"
    podman("rm", "--force", "--ignore", name)
    # The gateway refuses to start without an API keys file (no key, no access).
    keys = tmp_path / "api-keys"
    keys.write_text(f"e2e:{'0' * 64}\n")
    keys.chmod(0o444)
    podman(
        "run",
        "--volume",
        f"{keys}:/etc/docsum/api-keys:ro",
        "--env",
        "DOCSUM_GATEWAY_API_KEYS_FILE=/etc/docsum/api-keys",  # pragma: allowlist secret
        "--detach",
        "--name",
        name,
        "--network",
        "none",
        "--read-only",
        "--tmpfs",
        "/tmp",
        "--user",
        f"{UID}:{UID}",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        f"localhost/docsum/{image}:{tag}",
    )
    probe = (
        "import sys, urllib.request\n"
        f"try: print(urllib.request.urlopen('http://127.0.0.1:{port}{path}', timeout=2).status)\n"
        "except Exception as e: print(getattr(e, 'code', 0))"
    )
    try:
        deadline = time.monotonic() + 300
        status = 0
        while time.monotonic() < deadline:
            proc = subprocess.run(
                ["podman", "exec", name, "python3", "-c", probe],
                capture_output=True,
                text=True,
                check=False,
            )
            status = int(proc.stdout.strip() or 0)
            if status == want:
                break
            running = podman("inspect", name, "--format", "{{.State.Running}}").strip()
            assert running == "true", podman("logs", "--tail", "40", name, check=False)
            time.sleep(1)
        assert status == want, podman("logs", "--tail", "40", name, check=False)
    finally:
        podman("rm", "--force", "--ignore", name)


def test_scanned_page_through_three_containers(deployed: Deployed) -> None:
    page = (SHARED / "a018.png").read_bytes()
    body = _summarize(deployed, ("a018.png", page, "image/png"), max_sentences="2")
    assert body["errors"] == [], body["errors"]
    assert body["pages"][0]["source"] == "ocr"
    assert "pamphlet" in body["text"]
    # Extractive: the summary's words are the page's words.
    words = set(body["text"].split())
    summary = body["summary"].split()
    assert summary and sum(w in words for w in summary) >= 0.9 * len(summary), body["summary"]
    assert body["backends"] == {"ocr": "stable", "summarizer": "stable"}


def test_pdf_with_text_and_scanned_pages(deployed: Deployed) -> None:
    scan = Image.open(SHARED / "a006.png")
    text = [
        "The committee met on Tuesday to review the budget for the coming year.",
        "It approved funding for three new schools and a hospital in the north.",
        "Critics said the plan ignored rising maintenance costs of older buildings.",
    ]
    pdf = make_pdf([text, scan])
    body = _summarize(deployed, ("two-pages.pdf", pdf, "application/pdf"))
    assert [p["source"] for p in body["pages"]] == ["text-layer", "ocr"], body["pages"]
    assert body["errors"] == []
    assert body["summary"]


def test_metrics_of_every_pod_scraped_by_prometheus(deployed: Deployed, tmp_path: Path) -> None:
    prometheus = ROOT / ".tools" / "prometheus" / "bin" / "prometheus"
    assert prometheus.exists(), "run `make e2e` (it installs Prometheus into .tools/)"
    targets = {}
    for c in deployed.stack.containers:
        # Prometheus scrapes the probe listener when the pod has one, as the ServiceMonitors do.
        names = {p.get("name") for p in c.spec.get("ports", [])}
        scrape_port = c.port("probes" if "probes" in names else "http")
        targets[c.name] = f"{deployed.stack.pod_ip(c.pod)}:{scrape_port}"
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
        "scrape_configs": [
            {"job_name": name, "static_configs": [{"targets": [addr]}]}
            for name, addr in targets.items()
        ],
    }
    (tmp_path / "prometheus.yml").write_text(json.dumps(config))
    port = 19090
    proc = subprocess.Popen(
        [
            str(prometheus),
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        seen: dict[str, float] = {}
        while time.monotonic() < deadline and len(seen) < len(targets):
            try:
                q = httpx.get(
                    f"http://127.0.0.1:{port}/api/v1/query",
                    params={"query": 'count by (job) ({__name__=~"docsum_.+"})'},
                    timeout=5,
                ).json()
                seen = {r["metric"]["job"]: float(r["value"][1]) for r in q["data"]["result"]}
            except (httpx.HTTPError, KeyError, ValueError):
                pass
            time.sleep(1)
        assert set(seen) == set(targets), f"docsum_ series per job: {seen}"
        up = httpx.get(
            f"http://127.0.0.1:{port}/api/v1/query", params={"query": "up"}, timeout=5
        ).json()["data"]["result"]
        assert {r["metric"]["job"]: r["value"][1] for r in up} == dict.fromkeys(targets, "1")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_killed_pod_comes_back_and_the_next_call_succeeds(deployed: Deployed) -> None:
    c = deployed.container("summarizer")
    before = deployed.stack.inspect(c)
    os.kill(before["State"]["Pid"], 9)  # a crash (OOM kill, segfault): not `podman stop`
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        after = deployed.stack.inspect(c)
        if after["RestartCount"] > before["RestartCount"]:
            break
        time.sleep(0.5)
    assert after["RestartCount"] == before["RestartCount"] + 1
    deployed.stack.wait_ready([c], timeout_s=180)
    resp = _post(
        deployed,
        "/api/v1/summarize",
        json={"text": "The first sentence is here. A second one follows. And a third ends it."},
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["summary"]
