"""What log lines may say about a client's address (GDPR: never the whole of it)."""

from __future__ import annotations

import pytest

from gateway.logs import anonymized_ip


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
