"""The summarizer over real HTTP: a real server on 127.0.0.1 with the real model."""

from __future__ import annotations

import asyncio
import json
import re

import httpx
import pytest

from tests.support.services import LiveService

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ARTICLE = (
    "The city council approved a new budget on Tuesday after months of debate. "
    "The budget raises spending on schools by four per cent and cuts road repairs. "
    "Teachers welcomed the increase, saying classrooms had been crowded for years. "
    "Drivers' groups criticised the cut to road repairs. "
    "The mayor said the council had to choose between schools and roads. "
    "The weather on Tuesday was sunny. "
    "The budget takes effect in January, and the council will review it in June."
)


def _post(svc: LiveService, body: object, **kw: object) -> httpx.Response:
    return httpx.post(f"{svc.url}/v1/summarize", json=body, timeout=60, **kw)  # type: ignore[arg-type]


def test_summary_is_made_of_document_sentences_in_order(summarizer_service: LiveService) -> None:
    r = _post(summarizer_service, {"text": ARTICLE, "max_sentences": 2})
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["sentences"]) == 2
    indexes = [s["index"] for s in body["sentences"]]
    assert indexes == sorted(indexes)
    for s in body["sentences"]:
        assert s["text"] in ARTICLE and 0.0 <= s["score"] <= 1.0
    assert body["summary"] == " ".join(s["text"] for s in body["sentences"])
    assert body["model"]["name"] == "all-MiniLM-L6-v2"
    assert re.match(r"pacsum-mmr-\d+\+[0-9a-f]{12}$", body["model"]["version"])
    # The off-topic weather sentence is not central.
    assert "weather" not in body["summary"]


def test_ratio_and_one_sentence_text(summarizer_service: LiveService) -> None:
    r = _post(summarizer_service, {"text": ARTICLE, "ratio": 0.5})
    assert len(r.json()["sentences"]) == 4  # ceil(0.5 * 7)
    r = _post(summarizer_service, {"text": "  Only this sentence is here.  "})
    assert r.status_code == 200
    assert r.json()["summary"] == "Only this sentence is here."


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"text": ""}, 422, "empty"),
        ({"text": "   \n\t "}, 422, "empty"),
        ({"text": "!!! ..."}, 422, "no sentence"),
        ({"text": "ok.", "max_sentences": 0}, 422, "max_sentences"),
        ({"text": "ok.", "ratio": 1.5}, 422, "ratio"),
        ({"text": "ok.", "colour": "red"}, 422, "colour"),
        ({"txt": "ok."}, 422, "text"),
        ({"text": 42}, 422, "text"),
        ({"text": "x" * 200_001}, 413, "limit"),
    ],
)
def test_bad_input_gets_a_clear_4xx(
    summarizer_service: LiveService, body: object, status: int, needle: str
) -> None:
    r = _post(summarizer_service, body)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert needle in err["message"] and err["request_id"] == r.headers["x-request-id"]


def test_invalid_json_and_invalid_utf8_are_4xx(summarizer_service: LiveService) -> None:
    url = f"{summarizer_service.url}/v1/summarize"
    headers = {"content-type": "application/json"}
    r = httpx.post(url, content=b'{"text": "abc', headers=headers)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_input"
    r = httpx.post(url, content=b'{"text": "caf\xe9 \xff"}', headers=headers)
    assert r.status_code == 400 and "UTF-8" in r.json()["error"]["message"]
    r = httpx.post(url, content=json.dumps({"text": "lone \ud800 surrogate."}), headers=headers)
    assert r.status_code == 422 and "Unicode" in r.json()["error"]["message"]


def test_concurrent_requests_are_batched(summarizer_service: LiveService) -> None:
    def batch_count() -> float:
        text = httpx.get(f"{summarizer_service.url}/metrics").text
        m = re.search(r'docsum_inference_batch_size_count\{model="all-MiniLM-L6-v2"\} (\S+)', text)
        return float(m.group(1)) if m else 0.0

    async def burst(n: int) -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=60) as c:
            return await asyncio.gather(
                *(c.post(f"{summarizer_service.url}/v1/summarize", json={"text": ARTICLE})
                  for _ in range(n))
            )  # fmt: skip

    before = batch_count()
    responses = asyncio.run(burst(24))
    assert all(r.status_code == 200 for r in responses)
    assert len({r.json()["summary"] for r in responses}) == 1
    batches = batch_count() - before
    assert 1 <= batches < 24  # 24 requests went through in fewer model calls


def test_request_id_is_propagated_and_logged(summarizer_service: LiveService) -> None:
    r = _post(summarizer_service, {"text": ARTICLE}, headers={"X-Request-ID": "it-req-42"})
    assert r.headers["x-request-id"] == "it-req-42"
    lines = [json.loads(x) for x in summarizer_service.logs().splitlines() if x.startswith("{")]
    mine = [x for x in lines if x.get("request_id") == "it-req-42"]
    assert mine and mine[-1]["status"] == 200 and mine[-1]["path"] == "/v1/summarize"
