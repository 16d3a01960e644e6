"""The hostile-file corpus (tests/hostile/corpus.py) against the live services and gateway.

Every file must get its right answer (a 4xx with a message, or a 200 where the file is fine
after all), and the service must stay healthy: probes answer, memory does not jump, and an
ordinary request still works afterwards. All mismatches are gathered, then reported at once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import psutil
import pypdfium2 as pdfium
import pytest

from tests.hostile import corpus
from tests.hostile.corpus import Hostile
from tests.support.services import AUTH, ROOT, LiveService

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: Most a service's resident memory may grow over the whole corpus, in bytes. A decoded
#: 361-megapixel bomb alone would be 361 MB.
MAX_RSS_GROWTH = 150 * 1024 * 1024
#: (endpoint, file, bytes, status, problem) of every upload, written for docs/reliability.md.
ANSWERS: list[tuple[str, str, int, int, str | None]] = []


@pytest.fixture(scope="module", autouse=True)
def _write_answers() -> Iterator[None]:
    yield
    out = ROOT / "build" / "reliability" / "hostile.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = [
        {"endpoint": e, "file": f, "bytes": n, "status": s, "problem": p}
        for e, f, n, s, p in ANSWERS
    ]
    out.write_text(json.dumps(rows, indent=1) + "\n")


def _rss(svc: LiveService) -> int:
    return int(psutil.Process(svc.proc.pid).memory_info().rss)


def _problems_with(r: httpx.Response, statuses: tuple[int, ...], says: str) -> str | None:
    """Why ``r`` is not a right answer, or None."""
    if r.status_code not in statuses:
        return f"answered {r.status_code}, expected {statuses}: {r.text[:300]}"
    if r.status_code < 400:
        return None
    try:
        err = r.json()["error"]
        message = str(err["message"])
    except (ValueError, KeyError, TypeError):
        return f"error body not in docsum's shape: {r.text[:300]}"
    if not message.strip() or says not in message.lower():
        return f"message {message!r} does not say {says!r}"
    if err.get("request_id") != r.headers.get("x-request-id"):
        return "the error's request_id is not the X-Request-ID header"
    return None


def _health_problem(svc: LiveService) -> str | None:
    if svc.proc.poll() is not None:
        return f"the process exited ({svc.proc.returncode})"
    for probe in ("/livez", "/readyz"):
        r = httpx.get(f"{svc.url}{probe}", timeout=10)
        if r.status_code != 200:
            return f"{probe} answered {r.status_code}: {r.text[:200]}"
    return None


def _upload_all(
    svc: LiveService,
    path: str,
    files: tuple[Hostile, ...],
    headers: dict[str, str] | None = None,
    timeout_s: float = 60,
) -> list[str]:
    problems = []
    with httpx.Client(timeout=timeout_s, headers=headers) as client:
        for h in files:
            r = client.post(
                f"{svc.url}{path}", files={"file": (h.filename, h.data, h.content_type)}
            )
            problem = _problems_with(r, h.statuses, h.says)
            ANSWERS.append((f"{svc.name} {path}", h.name, len(h.data), r.status_code, problem))
            if problem:
                problems.append(f"{h.name}: {problem}")
            health = _health_problem(svc)
            if health:
                problems.append(f"after {h.name}: {health}")
                break
    return problems


def _post_json_all(svc: LiveService, path: str, headers: dict[str, str] | None = None) -> list[str]:
    problems = []
    with httpx.Client(timeout=60, headers=headers) as client:
        for name, (body, statuses, says) in corpus.json_corpus().items():
            r = client.post(
                f"{svc.url}{path}", content=body, headers={"content-type": "application/json"}
            )
            problem = _problems_with(r, statuses, says)
            ANSWERS.append((f"{svc.name} {path}", name, len(body), r.status_code, problem))
            if problem:
                problems.append(f"{name}: {problem}")
            health = _health_problem(svc)
            if health:
                problems.append(f"after {name}: {health}")
                break
    return problems


def _still_summarizes(svc: LiveService, path: str, headers: dict[str, str] | None = None) -> None:
    text = " ".join(corpus.SENTENCES)
    r = httpx.post(f"{svc.url}{path}", json={"text": text}, headers=headers, timeout=60)
    assert r.status_code == 200, r.text


def test_the_corpus_is_what_it_claims() -> None:
    """The PDFs are real: the encrypted one opens with its password and only with it; the
    JavaScript one holds JavaScript; the long one has 500 pages; the bomb claims 361 MP."""
    with pytest.raises(pdfium.PdfiumError):
        pdfium.PdfDocument(corpus.encrypted_pdf())
    doc = pdfium.PdfDocument(corpus.encrypted_pdf(), password=corpus.PDF_PASSWORD)
    assert "harbour board" in doc[0].get_textpage().get_text_range()
    js = corpus.javascript_pdf()
    assert b"/S /JavaScript" in js and b"/OpenAction" in js and b"/AA" in js
    assert len(pdfium.PdfDocument(corpus.long_pdf())) == 500
    bomb = corpus.bomb_png(19_000, 19_000)
    assert len(bomb) < 200_000 and bomb[16:24] == (19_000).to_bytes(4, "big") * 2
    assert len(corpus.big_text_json()) >= 10_000_000


def test_ocr_service_answers_every_hostile_image(ocr_service: LiveService) -> None:
    rss = _rss(ocr_service)
    problems = _upload_all(ocr_service, "/v1/ocr", corpus.image_corpus())
    assert not problems, "\n".join(problems)
    assert _rss(ocr_service) - rss < MAX_RSS_GROWTH


def test_summarizer_answers_every_hostile_body(summarizer_service: LiveService) -> None:
    rss = _rss(summarizer_service)
    problems = _post_json_all(summarizer_service, "/v1/summarize")
    assert not problems, "\n".join(problems)
    _still_summarizes(summarizer_service, "/v1/summarize")
    assert _rss(summarizer_service) - rss < MAX_RSS_GROWTH


def test_gateway_answers_every_hostile_upload_and_body(gateway_service: LiveService) -> None:
    rss = _rss(gateway_service)
    problems = _upload_all(gateway_service, "/api/v1/ocr", corpus.image_corpus(), AUTH)
    problems += _upload_all(
        gateway_service, "/api/v1/documents:summarize", corpus.document_corpus(), AUTH, 120
    )
    problems += _post_json_all(gateway_service, "/api/v1/summarize", AUTH)
    assert not problems, "\n".join(problems)
    _still_summarizes(gateway_service, "/api/v1/summarize", AUTH)
    assert _rss(gateway_service) - rss < MAX_RSS_GROWTH


def test_pdf_javascript_is_never_run_and_the_text_is_still_read(
    gateway_service: LiveService,
) -> None:
    h = next(h for h in corpus.document_corpus() if h.name == "PDF with JavaScript")
    r = httpx.post(
        f"{gateway_service.url}/api/v1/documents:summarize",
        files={"file": (h.filename, h.data, h.content_type)},
        headers=AUTH,
        timeout=60,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    # Read from the text layer, as if the script were not there; the script's endless loop
    # would have hung the request, and its form edits would show up as "xxx" in the text.
    assert [p["source"] for p in body["pages"]] == ["text-layer"]
    assert "harbour board" in body["text"] and "xxx" not in body["text"]
    assert body["summary"] and not body["errors"]
