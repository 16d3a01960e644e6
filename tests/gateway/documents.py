"""The gateway tests' documents: tests/support/documents.py (its names kept importable here)."""

from tests.support.documents import *  # noqa: F403
