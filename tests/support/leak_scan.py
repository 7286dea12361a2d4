"""What must never appear in a log line: the patterns the e2e suite's log scan looks for (tests/e2e/conftest.py).

Detection, not redaction: these match the secrets themselves (a redacted `sk_live_…abcd` or `…@example.fr`
does not match), so a hit means something leaked."""

from __future__ import annotations

import re
from typing import Final

__all__ = ["LEAK_PATTERNS", "leaks_in"]

LEAK_PATTERNS: Final = {
    "Stripe secret key": re.compile(r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{6,}"),
    "webhook signing secret": re.compile(r"\bwhsec_[A-Za-z0-9_]{6,}"),
    "client secret": re.compile(r"_secret_[A-Za-z0-9]{6,}"),
    "ephemeral key": re.compile(r"\bek_(?:live|test)_[A-Za-z0-9]{6,}"),
    "bearer token (JWT)": re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    "e-mail address": re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"),
    "card number": re.compile(r"\b(?:4242|4000|5555|3782|6011)(?:[ -]?\d){11,12}\b"),
}


def leaks_in(text: str) -> list[tuple[str, str]]:
    """(kind, matched text) of every leak in `text`."""
    return [
        (kind, match.group(0)) for kind, pattern in LEAK_PATTERNS.items() for match in pattern.finditer(text)
    ]
