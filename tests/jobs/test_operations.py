"""The async API end to end: real Redis, gateway, worker, OCR and summarizer processes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.gateway.documents import ARTICLE, png_bytes, text_page, tiff_bytes
from tests.support.jobs import AUTH, OTHER, Jobs, JobsFactory
from tests.support.pace import wait_for
from tests.support.services import LiveService, counter, summarize_document

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: What the synchronous and the async answers share (timings differ from run to run).
SAME = ("text", "summary", "pages", "errors", "backends")


@pytest.fixture(scope="module")
def jobs(make_jobs: JobsFactory) -> Jobs:
    """A gateway and one worker on database 0."""
    return make_jobs(0, workers=1)


@pytest.fixture(scope="module")
def limited(make_jobs: JobsFactory) -> Jobs:
    """A gateway with small limits and a 2 s TTL on database 1, and no worker: its jobs stay
    queued until cancelled."""
    env = {
        "DOCSUM_GATEWAY_JOBS_MAX_PENDING_PER_KEY": "2",
        "DOCSUM_GATEWAY_JOBS_MAX_STORED_BYTES_PER_KEY": "400000",
        "DOCSUM_GATEWAY_JOBS_RESULT_TTL_S": "2",
    }
    return make_jobs(1, env=env)


def _page(sentences: list[str] = ARTICLE) -> bytes:
    return png_bytes(text_page(sentences))


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("page.png", lambda: _page()),
        ("scan.tiff", lambda: tiff_bytes([text_page(ARTICLE), text_page(ARTICLE[::-1])])),
    ],
)
def test_submit_poll_result_equals_the_synchronous_one(jobs: Jobs, name: str, make: Any) -> None:
    data = make()
    r = jobs.submit(data, name)
    assert r.status_code == 202, r.text
    op = r.json()
    assert op["name"].startswith("operations/") and op["done"] is False
    assert op["metadata"]["state"] in ("queued", "running")  # a worker may be that quick
    assert r.headers["location"] == f"/api/v1/{op['name']}"
    done = jobs.done(op["name"])
    assert done["metadata"]["state"] == "succeeded", done
    pages = len(done["response"]["pages"])
    assert done["metadata"]["pages_done"] == done["metadata"]["pages_total"] == pages
    assert done["metadata"]["backends"] == {"ocr": "stable", "summarizer": "stable"}
    sync = summarize_document(
        jobs.gateway.url, (name, data, "application/octet-stream"), timeout_s=300
    )
    assert {k: done["response"][k] for k in SAME} == {k: sync[k] for k in SAME}
    assert sync["summary"] and "council" in sync["text"].lower()


def test_running_jobs_show_their_progress_and_stop_when_cancelled(jobs: Jobs) -> None:
    # Two long jobs run at once on the one worker (its default concurrency is 2).
    worker = jobs.workers[0]
    cancelled_before = counter(worker, "docsum_jobs_completed_total", outcome="cancelled")
    tiff = tiff_bytes([text_page(ARTICLE[i % 6 :] + ARTICLE[: i % 6]) for i in range(12)])
    ops = [jobs.submit(tiff, f"long-{n}.tiff").json() for n in range(2)]

    def reading() -> list[dict[str, Any]] | None:
        metas = [jobs.get(op["name"]).json()["metadata"] for op in ops]
        both = all(m["state"] == "running" and m["pages_done"] >= 1 for m in metas)
        return metas if both else None

    for meta in wait_for("a page of each read, both running", reading):
        assert meta["pages_total"] == 12 and meta["pages_done"] < 12
    for op in ops:
        r = httpx.post(f"{jobs.gateway.url}/api/v1/{op['name']}:cancel", headers=AUTH, timeout=30)
        assert r.status_code == 200, r.text
        assert r.json()["done"] is True and r.json()["error"]["code"] == "cancelled"
    wait_for(
        "the worker stopped both jobs",
        lambda: (
            counter(worker, "docsum_jobs_completed_total", outcome="cancelled")
            >= cancelled_before + 2
        ),
    )
    for op in ops:
        final = jobs.get(op["name"]).json()
        assert final["metadata"]["state"] == "cancelled" and "response" not in final


def test_another_key_sees_none_of_them(jobs: Jobs) -> None:
    op = jobs.submit(_page(ARTICLE[:3])).json()
    name = op["name"]
    assert jobs.get(name, headers=OTHER).status_code == 404
    url = f"{jobs.gateway.url}/api/v1/{name}"
    assert httpx.post(f"{url}:cancel", headers=OTHER, timeout=30).status_code == 404
    assert httpx.delete(url, headers=OTHER, timeout=30).status_code == 404
    theirs = jobs.get("operations", headers=OTHER).json()["operations"]
    assert name not in {o["name"] for o in theirs}
    mine = jobs.get("operations").json()["operations"]
    assert mine[0]["name"] == name  # newest first
    assert jobs.done(name)["metadata"]["state"] == "succeeded"  # untouched by the other key


def test_pending_limit_idempotency_listing_and_delete(limited: Jobs) -> None:
    page = _page(ARTICLE[:2])
    first = limited.submit(page, headers={"Idempotency-Key": "order-1"})
    assert first.status_code == 202, first.text
    repeat = limited.submit(page, headers={"Idempotency-Key": "order-1"})
    assert repeat.status_code == 200 and repeat.json()["name"] == first.json()["name"]
    other_body = limited.submit(_page(ARTICLE[2:4]), headers={"Idempotency-Key": "order-1"})
    assert other_body.status_code == 409 and other_body.json()["error"]["code"] == "conflict"
    second = limited.submit(page)
    assert second.status_code == 202
    refused = limited.submit(page)
    assert refused.status_code == 429, refused.text
    err = refused.json()["error"]
    assert err["limit"] == "jobs_max_pending_per_key" and err["allowed"] == 2
    assert "2 jobs queued or running" in err["message"]

    listed = limited.get("operations?page_size=1").json()
    assert [o["name"] for o in listed["operations"]] == [second.json()["name"]]
    token = listed["next_page_token"]
    rest = limited.get(f"operations?page_size=1&page_token={token}").json()
    assert [o["name"] for o in rest["operations"]] == [first.json()["name"]]
    assert "next_page_token" not in rest
    assert limited.get("operations?page_token=nonsense").status_code == 422

    url = f"{limited.gateway.url}/api/v1/{second.json()['name']}"
    assert httpx.delete(url, headers=AUTH, timeout=30).status_code == 204
    assert httpx.get(url, headers=AUTH, timeout=30).status_code == 404
    assert limited.submit(page).status_code == 202  # the deleted job's slot is free again


def test_stored_bytes_limit(limited: Jobs) -> None:
    big = tiff_bytes([text_page(ARTICLE)] * 8)
    assert len(big) > 400_000 / 2  # the second is over the limit, the pending limit not yet
    answers = [limited.submit(big, "big.tiff", headers=OTHER) for _ in range(2)]
    statuses = [a.status_code for a in answers]
    refused = [a for a in answers if a.status_code == 429]
    assert refused, statuses
    assert refused[0].json()["error"]["limit"] == "jobs_max_stored_bytes_per_key"
    for a in answers:
        if a.status_code == 202:
            url = f"{limited.gateway.url}/api/v1/{a.json()['name']}"
            httpx.delete(url, headers=OTHER, timeout=30)


def test_an_ended_operation_expires_after_its_ttl(limited: Jobs) -> None:
    op = limited.submit(_page(ARTICLE[4:]), headers=OTHER).json()
    url = f"{limited.gateway.url}/api/v1/{op['name']}"
    r = httpx.post(f"{url}:cancel", headers=OTHER, timeout=30)
    assert r.json()["metadata"]["state"] == "cancelled"
    assert httpx.get(url, headers=OTHER, timeout=30).status_code == 200
    wait_for(
        "the operation expired",
        lambda: httpx.get(url, headers=OTHER, timeout=30).status_code == 404,
        timeout_s=60,
    )
    listed = limited.get("operations", headers=OTHER).json()["operations"]
    assert op["name"] not in {o["name"] for o in listed}


def test_the_client_errors_are_the_synchronous_routes(jobs: Jobs) -> None:
    r = jobs.submit(b"plain text, not a document", "notes.txt")
    assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_media_type"
    r = jobs.submit(_page(), max_sentences="0")
    assert r.status_code == 422, r.text
    r = jobs.submit(_page(), headers={"Idempotency-Key": "x" * 300})
    assert r.status_code == 422
    assert jobs.get("operations/0123", wait="30s").status_code == 404
    assert jobs.get("operations/" + "0" * 32, wait="soon").status_code == 422


def test_a_gateway_without_redis_answers_503(gateway_service: LiveService, tmp_path: Path) -> None:
    r = httpx.post(
        f"{gateway_service.url}/api/v1/documents:summarizeAsync",
        headers=AUTH,
        files={"file": ("p.png", _page(ARTICLE[:1]), "image/png")},
        timeout=30,
    )
    assert r.status_code == 503 and r.json()["error"]["code"] == "jobs_unavailable"
    assert "DOCSUM_GATEWAY_REDIS_URL" in r.json()["error"]["message"]


def test_the_async_routes_survive_generated_input(make_jobs: JobsFactory) -> None:
    from tests.reliability.fuzzing import fuzz_api

    report = fuzz_api(make_jobs(4).gateway.url, 120, seed_value=20261202, headers=AUTH)
    failures = [
        f"{f.operation} [{f.mode}] {f.rule} ({f.status}): {f.detail[:200]}"
        for f in report.failures[:10]
    ]
    assert not report.failed_cases, "\n".join(failures)
    assert {
        "POST /api/v1/documents:summarizeAsync",
        "GET /api/v1/operations/{op_id}",
        "GET /api/v1/operations",
        "POST /api/v1/operations/{op_id}:cancel",
        "DELETE /api/v1/operations/{op_id}",
    } <= set(report.statuses)
    assert report.statuses["POST /api/v1/documents:summarizeAsync"][202] > 0
