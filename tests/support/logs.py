"""Capturing the gateway's log lines (loguru, one JSON object per line) as production writes them."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager

from gateway.logs import configure_logging

__all__ = ["captured_logs"]


@contextmanager
def captured_logs(level: str = "DEBUG") -> Iterator[io.StringIO]:
    """Everything logged in the block at `level` or above, as production's sink writes it. Gateways started
    inside the block flush their buffered request lines when they stop, so read the buffer after they have."""
    buffer = io.StringIO()
    configure_logging(level, stream=buffer)
    try:
        yield buffer
    finally:
        configure_logging("DEBUG")  # the session's sink again (tests/conftest.py)
