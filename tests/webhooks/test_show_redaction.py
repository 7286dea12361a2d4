"""`gateway webhooks show` prints Stripe's payload, which carries secrets Stripe puts in its events: the
PaymentIntent's client secret and the buyer's e-mail. They are redacted in what the operator sees."""

from __future__ import annotations

import json

from gateway.webhooks.commands import format_payload

CLIENT_SECRET = "pi_3Abc_secret_" + "Zyx987654321"


def test_the_client_secret_and_email_in_a_payload_are_not_shown() -> None:
    payload = {
        "id": "evt_1",
        "data": {
            "object": {
                "id": "pi_3Abc",
                "client_secret": CLIENT_SECRET,
                "receipt_email": "jean.dupont@example.fr",
                "amount": 2500,
            }
        },
    }
    shown = format_payload(json.dumps(payload).encode())
    assert CLIENT_SECRET not in shown
    assert "jean.dupont" not in shown
    assert '"client_secret": "pi_3Abc_secret_…"' in shown
    assert '"amount": 2500' in shown
    assert '"id": "pi_3Abc"' in shown


def test_a_payload_that_is_not_json_is_redacted_too() -> None:
    shown = format_payload(f"garbage {CLIENT_SECRET}".encode())
    assert shown.startswith("(not JSON)\n")
    assert CLIENT_SECRET not in shown
