"""Async jobs' fixtures: each group of tests uses its own Redis database of the session's
server (the keys' names are fixed), so a worker that fails on purpose never takes another
test's jobs. The processes themselves are started by :mod:`tests.support.jobs`.
"""

from __future__ import annotations

import pytest

from tests.support.services import LiveService
from tests.support.stack import stable_backends


@pytest.fixture(scope="module")
def backends(
    ocr_service: LiveService, summarizer_service: LiveService
) -> dict[str, list[dict[str, object]]]:
    return stable_backends(ocr_service, summarizer_service)
