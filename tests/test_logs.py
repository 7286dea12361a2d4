"""What log lines may say about a client's address (GDPR: never the whole of it)."""

from __future__ import annotations

import datetime
import time

import pytest

from gateway.logs import anonymized_ip, now_iso


@pytest.mark.parametrize(
    ("address", "logged"),
    [
        ("203.0.113.77", "203.0.113.0/24"),
        ("::ffff:203.0.113.77", "203.0.113.0/24"),
        ("2001:db8:85a3:8d3:1319:8a2e:370:7348", "2001:db8:85a3::/48"),
        ("127.0.0.1", "127.0.0.0/24"),
        ("not an address", None),
        ("", None),
        (None, None),
    ],
)
def test_an_ip_address_is_logged_without_its_host_part(address: str | None, logged: str | None) -> None:
    assert anonymized_ip(address) == logged


def test_now_iso_is_the_seeds_utc_timestamp_to_the_millisecond() -> None:
    for _ in range(3000):  # across several millisecond and, likely, second boundaries
        before = time.time_ns() // 1_000_000
        stamp = now_iso()
        after = time.time_ns() // 1_000_000
        assert len(stamp) == 24, stamp
        assert stamp.endswith("Z"), stamp
        parsed = datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%f%z")
        millis = int(parsed.timestamp() * 1000 + 0.5)
        assert before <= millis <= after, stamp
