"""The scrubber every log line passes through, and how secrets are shown where a person must recognise them."""

from __future__ import annotations

import msgspec
import pytest
from loguru import logger

from gateway.redaction import redact, scrub
from tests.support.logs import captured_logs

LIVE_KEY = "sk_live_" + "51Habcdefghijklmnopqrstu4321"
CLIENT_SECRET = "pi_3Nabc123_secret_" + "XyZ987654321"
JWT = "eyJhbGciOiJIUzI1NiJ9" + ".eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLWJ5dGVz"


@pytest.mark.parametrize(
    ("secret", "shown"),
    [
        (LIVE_KEY, "sk_live_…4321"),
        ("rk_test_" + "abcdefghijklmnop9876", "rk_test_…9876"),
        ("whsec_" + "abcdefghijklmnopqrst", "whsec_…qrst"),
        ("ek_test_" + "YWNjdF8xMjM0NTY3ODkw", "ek_test_…ODkw"),
        (CLIENT_SECRET, "pi_3Nabc123_secret_…"),
        (JWT, "jwt…"),
        ("jean.dupont+shop@example.fr", "…@example.fr"),
        ("4242 4242 4242 4242", "card…4242"),
        ("4000-0025-0000-3155", "card…3155"),
        ("378282246310005", "card…0005"),
    ],
)
def test_secret_shaped_values_are_redacted_wherever_they_appear(secret: str, shown: str) -> None:
    text = f'refused ({secret}), "field": "{secret}"'
    scrubbed = scrub(text)
    assert secret not in scrubbed
    assert scrubbed == f'refused ({shown}), "field": "{shown}"'


@pytest.mark.parametrize(
    "harmless",
    [
        "pay_1705312200000_abc123def",  # a request id
        "pi_3Nabc123",  # a PaymentIntent id is no secret
        "amount 1234567890123456",  # 16 digits that fail the Luhn check: not a card
        "2024-01-15T10:30:00.000Z",
        "order-42 paid 2500 eur",
    ],
)
def test_ids_amounts_and_times_are_left_alone(harmless: str) -> None:
    assert scrub(harmless) == harmless


def test_redact_shows_a_suffix_only_when_it_gives_little_away() -> None:
    assert redact(LIVE_KEY) == "sk_live_…4321"
    assert redact("sk_live_" + "short") == "sk_live_…"
    assert redact("no-prefix-but-long-value") == "…alue"


def test_every_log_line_is_scrubbed_fields_and_exceptions_alike() -> None:
    with captured_logs() as buffer:
        try:
            raise ValueError(f"Stripe said: bad key {LIVE_KEY}")
        except ValueError:
            logger.bind(token=JWT, email="jean@example.fr").exception("something_failed")
    text = buffer.getvalue()
    for secret in (LIVE_KEY, JWT, "jean@example.fr"):
        assert secret not in text
    [line] = [msgspec.json.decode(raw) for raw in text.splitlines() if "something_failed" in raw]
    assert line["token"] == "jwt…"
    assert line["email"] == "…@example.fr"
    assert "sk_live_…4321" in line["error"]
