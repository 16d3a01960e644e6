"""What a user sees in a browser: the gateway's /docs page in headless Chromium.

The page renders offline (every request it makes goes to the gateway), lists the API's
operations, takes an API key through "Authorize" and keeps it across a reload, and "Try it
out" → "Execute" on /api/v1/summarize shows a 200 with a summary. The checks read the DOM; a
screenshot (the page's top down to the response) is kept in the test's folder and in
reports/e2e/docs-ui.png.

`make e2e` runs it against the deployed stack's gateway. To iterate without images, against a
summarizer and a gateway started here on 127.0.0.1:
    DOCSUM_E2E=1 DOCSUM_E2E_GATEWAY=local .venv/bin/python -m pytest tests/e2e/test_docs_ui.py
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.support.services import GATEWAY_KEY, free_port, start_gateway_alive, start_service
from tests.support.stack import SUMMARIZER_ENV

from .browser import Chromium, Page
from .conftest import GATEWAY
from .kube import ROOT

SCREENSHOT = ROOT / "reports" / "e2e" / "docs-ui.png"
#: The operations of the API (their ids: `operations-<tag>-<operationId>`).
OPERATIONS = {"operations-api-summarize", "operations-api-ocr", "operations-api-summarize_document"}
SUMMARIZE = "#operations-api-summarize"
TEXT = (
    "The river rose overnight after three days of rain. Schools in the valley closed and "
    "the main bridge was shut to traffic. By noon the water had started to fall, and the "
    "council said the bridge would reopen once engineers had inspected it."
)


def q(selector: str) -> str:
    """The JavaScript expression for the first element matching ``selector``."""
    return f"document.querySelector({json.dumps(selector)})"


@pytest.fixture(scope="module")
def gateway(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """(URL, API key) of the gateway the browser talks to."""
    if os.environ.get("DOCSUM_E2E_GATEWAY") != "local":
        yield GATEWAY, request.getfixturevalue("deployed").api_key
        return
    tmp = tmp_path_factory.mktemp("stack")
    summarizer = start_service("summarizer", tmp, SUMMARIZER_ENV)
    # No OCR service: the page and the summarize route do not need one.
    backends = {
        "summarizer": [{"url": summarizer.url, "version": "stable", "weight": 100}],
        "ocr": [{"url": f"http://127.0.0.1:{free_port()}", "version": "stable", "weight": 100}],
    }
    gw = start_gateway_alive(tmp / "gateway", backends)
    try:
        yield gw.url, GATEWAY_KEY
    finally:
        gw.stop()
        summarizer.stop()


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Page]:
    with Chromium.launch(tmp_path / "profile") as browser:
        yield browser.new_page()


def authorize(page: Page, key: str) -> None:
    """Authorize → the ApiKey form → type the key → Authorize → Close."""
    page.click(q(".auth-wrapper .btn.authorize"))
    page.type_text(q("#api_key_value"), key)
    page.click(f"{q('#api_key_value')}.form.querySelector('button[type=submit]')")
    page.wait_for(
        f"{q('#api_key_value')} === null && {q('.auth-container form')}.innerText"
        ".includes('Authorized')",
        what="the ApiKey form to say Authorized",
    )
    page.click(q(".auth-container .btn-done"))
    page.wait_for(f"{q('.modal-ux')} === null", what="the dialog to close")


def test_docs_page_authorizes_and_summarizes(
    page: Page, gateway: tuple[str, str], tmp_path: Path
) -> None:
    base, key = gateway
    page.navigate(f"{base}/docs")
    listed = page.wait_for(
        "(() => { const ids = [...document.querySelectorAll('.opblock')].map(e => e.id);"
        f" return ids.length >= {len(OPERATIONS)} ? ids : null; }})()",
        what="the operations to be listed",
    )
    assert set(listed) >= OPERATIONS, listed
    assert page.evaluate(f"{q('.auth-wrapper .btn.authorize')}.className").endswith("unlocked")

    authorize(page, key)
    assert page.evaluate(f"{q('.auth-wrapper .btn.authorize')}.className").endswith(" locked")

    page.click(q(f"{SUMMARIZE} .opblock-summary-control"))
    # Markdown with <placeholders> shows them, not swallowed as HTML tags.
    params = page.wait_for(f"{q(SUMMARIZE + ' .parameters-container')}?.innerText")
    assert "<upstream>=<version>" in params, params
    page.click(q(f"{SUMMARIZE} .try-out__btn"))
    page.type_text(
        q(f"{SUMMARIZE} textarea.body-param__text"), json.dumps({"text": TEXT, "max_sentences": 1})
    )
    page.click(q(f"{SUMMARIZE} .btn.execute"))
    status = page.wait_for(
        f"(() => {{ const s = {q(SUMMARIZE + ' .live-responses-table tbody .response-col_status')};"
        " return s && s.innerText.trim(); })()",
        timeout_s=60,
        what="the response of Execute",
    )
    shot = page.screenshot(
        tmp_path / "docs-ui.png", down_to=q(f"{SUMMARIZE} .live-responses-table")
    )
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shot, SCREENSHOT)
    body = page.evaluate(
        f"{q(SUMMARIZE + ' .live-responses-table tbody .response-col_description pre')}.innerText"
    )
    assert status == "200", body
    summary = json.loads(body)["summary"]
    assert summary and summary in TEXT, body
    curl = page.evaluate(f"{q(SUMMARIZE + ' .curl-command')}.innerText")
    assert f"X-API-Key: {key}" in curl, curl
    assert shot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")

    # persistAuthorization: a reload keeps the key.
    page.navigate(f"{base}/docs")
    page.wait_for(f"{q('.auth-wrapper .btn.authorize')}?.className.endsWith(' locked')")

    origin = "{0.scheme}://{0.netloc}/".format(urlsplit(base))
    foreign = [u for u in page.requests if not u.startswith((origin, "data:"))]
    assert not foreign, f"the page fetched from elsewhere than the gateway: {foreign}"
    assert not page.failures and not page.errors, (page.failures, page.errors)
