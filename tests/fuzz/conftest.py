"""Fixtures of the fuzz runs: one HTTP client per module, driven from the (synchronous) Hypothesis examples."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.threaded_gateway import HttpClient

DEADLINE_S = 5.0
"""How long any one request may take, sent and answered in full; longer is a hang and fails the example."""


@pytest.fixture(scope="module")
def client() -> Iterator[HttpClient]:
    http = HttpClient(DEADLINE_S)
    try:
        yield http
    finally:
        http.close()
