"""`gateway check-payments`: each misconfiguration class with its exit code and message, `--json`, redaction, and
the Stripe checks against the real emulator process.

Configuration-only cases run in-process (`gateway.cli.main`, environment and working directory monkeypatched, so
no `.env` of the checkout is read); a few run the real console script with an explicit environment and
`cwd=tmp_path`, as an operator would.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest

from gateway import cli
from gateway.ops import check_payments
from gateway.ops.check_payments import redact
from gateway.settings import Settings
from tests.support.stripe_emulator import REPO_ROOT, StripeEmulator

GATEWAY = Path(sys.executable).parent / "gateway"

# Well-formed values of every kind, each with its own last 4 characters so that redactions can be told apart.
SK_TEST = "sk_test_51HxTestSecretKeyQwErTyUiOp0tk01"
PK_TEST = "pk_test_51HxTestPublishKeyAsDfGhJkL0pk02"
SK_LIVE = "sk_live_" + "51HxLiveSecretKeyZxCvBnMqWe0lk03"
PK_LIVE = "pk_live_51HxLivePublishKeyPoIuYtReW0lp04"
RK_TEST = "rk_test_51HxRestrictedKeyMnBvCxZaS0rk05"
WHSEC = "whsec_" + "9a8b7c6d5e4f3a2b1c0d9e8f7a6b9f3c"
WHSEC_OLD = "whsec_" + "1f2e3d4c5b6a7f8e9d0c1b2a3f4e0ld6"
JWT = "Zq3vN8pL2xT7mR5kW9cB4hJ6fD1sG0aYeUjw07"
QR = "Hn5tR2wQ8zK4vM7pX1cL9bF3gD6sJ0aYeUqr08"
PUBLIC_URL = "https://pay.example.com"
WEBHOOK_URL = PUBLIC_URL + "/webhooks/stripe"
EVENTS = [
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.canceled",
    "charge.refunded",
]

GOOD_TEST = {
    "STRIPE_SECRET_KEY": SK_TEST,
    "STRIPE_PUBLISHABLE_KEY": PK_TEST,
    "STRIPE_WEBHOOK_SECRET": WHSEC,
    "JWT_SECRET": JWT,
    "QR_SECRET": QR,
    "GATEWAY_PUBLIC_URL": PUBLIC_URL,
}
"""A complete development configuration (test keys, NODE_ENV unset)."""
GOOD_LIVE = {
    **GOOD_TEST,
    "NODE_ENV": "production",
    "STRIPE_SECRET_KEY": SK_LIVE,
    "STRIPE_PUBLISHABLE_KEY": PK_LIVE,
}
"""A complete production configuration."""
SETTINGS_VARIABLES = [field.name.upper() for field in msgspec.structs.fields(Settings)]
STRIPE_CHECKS = ["stripe_authentication", "webhook_endpoint", "apple_pay_domain"]


@dataclass
class Outcome:
    code: int
    out: str
    err: str

    def report(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.out)
        return document

    def check(self, check_id: str) -> dict[str, Any]:
        found: list[dict[str, Any]] = [c for c in self.report()["checks"] if c["id"] == check_id]
        assert len(found) == 1, f"{check_id} not in {self.out}"
        return found[0]

    def statuses(self) -> dict[str, str]:
        return {check["id"]: check["status"] for check in self.report()["checks"]}

    def failed(self) -> list[str]:
        return [check_id for check_id, status in self.statuses().items() if status == "fail"]

    def skipped(self) -> dict[str, str]:
        return {skip["id"]: skip["reason"] for skip in self.report()["skipped"]}


Runner = Callable[..., Outcome]


@pytest.fixture
def checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory and no configuration in the environment."""
    for var in SETTINGS_VARIABLES:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    # main() sends the logs to stderr at WARNING; the session's sink (tests/conftest.py) must stay as it is.
    monkeypatch.setattr(cli, "configure_logging", lambda *args, **kwargs: None)
    return tmp_path


@pytest.fixture
def check(checkout: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Runner:
    """`gateway check-payments ARGS` in-process with `env` as the environment (the only configuration there is)."""

    def run(env: dict[str, str], *args: str) -> Outcome:
        with monkeypatch.context() as patch:
            for var, value in env.items():
                patch.setenv(var, value)
            code = cli.main(["check-payments", *args])
        out, err = capsys.readouterr()
        return Outcome(code, out, err)

    return run


def gateway(cwd: Path, env: dict[str, str], *args: str) -> Outcome:
    """The real console script, with exactly `env` (plus what Python needs) and `cwd` as the working directory."""
    full_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(REPO_ROOT), **env}
    result = subprocess.run(
        [str(GATEWAY), "check-payments", *args],
        env=full_env,
        cwd=cwd,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        check=False,
    )
    return Outcome(result.returncode, result.stdout, result.stderr)


def without(env: dict[str, str], *names: str) -> dict[str, str]:
    return {var: value for var, value in env.items() if var not in names}


# -- a complete configuration -------------------------------------------------------------------------------------


def test_a_complete_configuration_passes_offline(check: Runner) -> None:
    outcome = check(GOOD_TEST, "--offline", "--json")
    assert (outcome.code, outcome.err) == (0, "")
    assert outcome.failed() == []
    assert set(outcome.statuses().values()) == {"pass"}
    assert outcome.skipped() == dict.fromkeys(STRIPE_CHECKS, "--offline")


def test_the_table_reads_at_3_am(check: Runner) -> None:
    outcome = check(without(GOOD_TEST, "JWT_SECRET"), "--offline")
    assert outcome.code == 1
    lines = outcome.out.splitlines()
    assert (
        lines[0]
        == "gateway check-payments · NODE_ENV=development · configuration from the environment (no .env)"
    )
    assert any(
        line.startswith("✓ STRIPE_SECRET_KEY ") and "sk_test_…tk01 (test mode)" in line for line in lines
    )
    failure = next(index for index, line in enumerate(lines) if line.startswith("✗ JWT_SECRET "))
    assert "not set" in lines[failure]
    hint = lines[failure + 1]
    assert hint.lstrip().startswith(
        "→ generate one: `python3 -c 'import secrets; print(secrets.token_urlsafe(48))'`"
    )
    assert "set JWT_SECRET in the environment or in" in hint
    assert hint.index("→") == lines[failure].index("not set")  # under the message, not under the symbol
    assert "- not checked (--offline): Stripe API key, webhook endpoint, Apple Pay domain" in lines
    assert lines[-1] == (
        "✗ 11 passed, 0 warnings, 1 failed: fix the failures above, then run `gateway check-payments` again (exit 1)"
    )


# -- missing variables --------------------------------------------------------------------------------------------


def test_an_empty_configuration_names_every_missing_variable(check: Runner) -> None:
    outcome = check({}, "--json")
    assert outcome.code == 1
    missing = [
        "stripe_secret_key",
        "stripe_publishable_key",
        "stripe_webhook_secret",
        "jwt_secret",
        "qr_secret",
    ]
    assert outcome.failed() == [*missing, "public_url"]
    for check_id in missing:
        assert outcome.check(check_id)["message"].startswith("not set")
    assert outcome.check("public_url")["message"] == (
        "not set: Stripe's webhooks would be expected at http://127.0.0.1:3000/webhooks/stripe"
    )
    assert outcome.check("stripe_api_version") == {
        "id": "stripe_api_version",
        "name": "STRIPE_API_VERSION",
        "status": "pass",
        "message": "2024-06-20 (default), pinned on every Stripe call",
        "hint": None,
    }
    # Without a usable key, nothing is asked of Stripe.
    assert outcome.skipped() == {
        "stripe_keys_same_mode": "needs both keys usable",
        "stripe_mode_for_node_env": "needs a usable key",
        **dict.fromkeys(STRIPE_CHECKS, "needs a usable STRIPE_SECRET_KEY"),
    }


@pytest.mark.parametrize(
    ("variable", "check_id"),
    [
        ("STRIPE_SECRET_KEY", "stripe_secret_key"),
        ("STRIPE_PUBLISHABLE_KEY", "stripe_publishable_key"),
        ("STRIPE_WEBHOOK_SECRET", "stripe_webhook_secret"),
        ("JWT_SECRET", "jwt_secret"),
        ("QR_SECRET", "qr_secret"),
        ("GATEWAY_PUBLIC_URL", "public_url"),
    ],
)
def test_each_missing_variable_fails_alone(check: Runner, variable: str, check_id: str) -> None:
    outcome = check(without(GOOD_TEST, variable), "--offline", "--json")
    assert outcome.code == 1
    assert outcome.failed() == [check_id]
    failure = outcome.check(check_id)
    assert failure["name"] == variable
    assert failure["message"].startswith("not set")
    assert variable in failure["hint"]


def test_an_empty_value_is_unset_as_the_server_reads_it(check: Runner) -> None:
    outcome = check({**GOOD_TEST, "QR_SECRET": ""}, "--offline", "--json")
    assert outcome.failed() == ["qr_secret"]


# -- key formats and modes ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("STRIPE_SECRET_KEY", PK_TEST, "pk_test_…pk02 is a publishable key, not a secret key"),
        ("STRIPE_SECRET_KEY", WHSEC, "whsec_…9f3c is a webhook signing secret, not an API key"),
        (
            "STRIPE_SECRET_KEY",
            "mk_test_51HxSomethingElse0000",
            "…0000 does not start with sk_live_, sk_test_,",
        ),
        ("STRIPE_SECRET_KEY", "sk_live_...", "sk_live_… holds characters Stripe keys never have"),
        (
            "STRIPE_SECRET_KEY",
            "sk_live_51Hx Secret Key With Spaces",
            "holds characters Stripe keys never have",
        ),
        (
            "STRIPE_SECRET_KEY",
            "sk_test_51HxCut",
            "sk_test_… is too short (7 characters after sk_test_): cut short when pasted?",
        ),
        ("STRIPE_SECRET_KEY", "sk_test_xxxxxxxxxxxxxxxxxxxxxxxx", "is a placeholder"),
        ("STRIPE_PUBLISHABLE_KEY", SK_TEST, "sk_test_…tk01 is a SECRET key, and the gateway gives"),
        ("STRIPE_PUBLISHABLE_KEY", "pk_sandbox_51HxPublishKey000", "does not start with pk_live_, pk_test_"),
    ],
)
def test_malformed_keys_fail(check: Runner, variable: str, value: str, message: str) -> None:
    outcome = check({**GOOD_TEST, variable: value}, "--offline", "--json")
    assert outcome.code == 1
    failure = outcome.check(variable.lower())
    assert failure["status"] == "fail"
    assert message in failure["message"]
    assert "dashboard.stripe.com" in failure["hint"]
    assert value not in outcome.out


def test_a_secret_key_in_the_publishable_slot_says_to_roll_it(check: Runner) -> None:
    outcome = check({**GOOD_TEST, "STRIPE_PUBLISHABLE_KEY": SK_TEST}, "--offline", "--json")
    assert "roll that secret key there now" in outcome.check("stripe_publishable_key")["hint"]


def test_a_restricted_key_is_a_secret_key(check: Runner) -> None:
    outcome = check({**GOOD_TEST, "STRIPE_SECRET_KEY": RK_TEST}, "--offline", "--json")
    assert outcome.code == 0
    assert outcome.check("stripe_secret_key")["message"] == "rk_test_…rk05 (test mode, restricted key)"


@pytest.mark.parametrize(
    ("value", "status", "message"),
    [
        (f"{WHSEC},{WHSEC_OLD}", "pass", "2 secrets (rolling): whsec_…9f3c, whsec_…0ld6"),
        (f"{WHSEC} {WHSEC}", "pass", "1 secret: whsec_…9f3c"),
        (SK_TEST, "fail", "entry 1 is not a `whsec_…` signing secret"),
        (f"{WHSEC},,{WHSEC_OLD}", "fail", "entry 2 is empty"),
    ],
)
def test_webhook_secrets(check: Runner, value: str, status: str, message: str) -> None:
    outcome = check({**GOOD_TEST, "STRIPE_WEBHOOK_SECRET": value}, "--offline", "--json")
    assert outcome.code == (0 if status == "pass" else 1)
    result = outcome.check("stripe_webhook_secret")
    assert (result["status"], result["message"]) == (status, message)


def test_keys_of_different_modes_fail(check: Runner) -> None:
    outcome = check({**GOOD_TEST, "STRIPE_SECRET_KEY": SK_LIVE}, "--offline", "--json")
    assert outcome.code == 1
    assert outcome.failed() == ["stripe_keys_same_mode"]
    assert outcome.check("stripe_keys_same_mode")["message"].startswith(
        "STRIPE_SECRET_KEY is live (sk_live_…lk03) but STRIPE_PUBLISHABLE_KEY is test (pk_test_…pk02)"
    )


def test_test_keys_in_production_fail(check: Runner) -> None:
    outcome = check(
        {**GOOD_LIVE, "STRIPE_SECRET_KEY": SK_TEST, "STRIPE_PUBLISHABLE_KEY": PK_TEST}, "--offline", "--json"
    )
    assert outcome.code == 1
    assert outcome.failed() == ["stripe_mode_for_node_env", "server_start"]
    assert outcome.check("stripe_mode_for_node_env")["message"].startswith(
        "test keys with NODE_ENV=production"
    )
    # The server's own loader says the same: it would not start.
    assert outcome.check("server_start")["message"] == (
        "would refuse to start: STRIPE_SECRET_KEY must be a live key (sk_live_…) when NODE_ENV=production;"
        " STRIPE_PUBLISHABLE_KEY must be a live key (pk_live_…) when NODE_ENV=production"
    )


def test_live_keys_outside_production_are_a_warning(check: Runner) -> None:
    outcome = check({**GOOD_LIVE, "NODE_ENV": "staging"}, "--offline", "--json")
    assert outcome.code == 0
    assert outcome.failed() == []
    warning = outcome.check("stripe_mode_for_node_env")
    assert warning["status"] == "warn"
    assert (
        warning["message"] == "live keys outside production (NODE_ENV=staging): real cards would be charged"
    )
    assert outcome.report()["ok"] is True


def test_live_keys_in_production_pass(check: Runner) -> None:
    outcome = check(GOOD_LIVE, "--offline", "--json")
    assert (outcome.code, outcome.failed()) == (0, [])
    assert outcome.check("stripe_mode_for_node_env")["message"] == "live keys in production"
    assert outcome.report()["production"] is True


def test_a_near_miss_of_production_is_a_warning(check: Runner) -> None:
    outcome = check({**GOOD_TEST, "NODE_ENV": "prod"}, "--offline", "--json")
    assert outcome.code == 0
    warning = outcome.check("node_env")
    assert warning["status"] == "warn"
    assert "'prod' is not exactly `production`" in warning["message"]


# -- API version --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "message"),
    [
        ("2024/06/20", "'2024/06/20' is not a Stripe API version: YYYY-MM-DD, optionally .name"),
        ("20240620", "'20240620' is not a Stripe API version"),
        ("2024-06-20.Acacia", "'2024-06-20.Acacia' is not a Stripe API version"),
        ("2024-13-01", "'2024-13-01' is not a calendar date"),
        ("2023-02-29", "'2023-02-29' is not a calendar date"),
        ("2010-12-31", "'2010-12-31' is before Stripe's first API version (2011)"),
        ("2999-01-01", "'2999-01-01' is in the future"),
    ],
)
def test_a_bad_api_version_fails(check: Runner, version: str, message: str) -> None:
    outcome = check({**GOOD_TEST, "STRIPE_API_VERSION": version}, "--offline", "--json")
    assert outcome.code == 1
    assert "stripe_api_version" in outcome.failed()
    assert outcome.check("stripe_api_version")["message"].startswith(message)


@pytest.mark.parametrize("version", ["2024-06-20", "2024-10-28.acacia", "2011-01-01", "2024-02-29"])
def test_a_good_api_version_passes(check: Runner, version: str) -> None:
    outcome = check({**GOOD_TEST, "STRIPE_API_VERSION": version}, "--offline", "--json")
    assert outcome.code == 0
    assert outcome.check("stripe_api_version")["message"] == f"{version}, pinned on every Stripe call"


# -- JWT_SECRET / QR_SECRET ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "changeme",
        "secret",
        "your_jwt_secret",
        "your-super-secure-jwt-key",
        "your-super-secure-jwt-key-padded-to-be-long-enough",
        "CHANGEME-changeme-CHANGEME-changeme-1234",
        "this-is-an-example-value-for-the-docs-only",
        "placeholder-placeholder-placeholder",
    ],
)
@pytest.mark.parametrize("variable", ["JWT_SECRET", "QR_SECRET"])
def test_placeholder_secrets_fail(check: Runner, variable: str, value: str) -> None:
    outcome = check({**GOOD_TEST, variable: value}, "--offline", "--json")
    assert outcome.code == 1
    # The server refuses the short ones itself (an HMAC key of 32+ characters); the long ones only this check.
    refused = ["server_start"] if len(value) < 32 else []
    assert outcome.failed() == [variable.lower(), *refused]
    failure = outcome.check(variable.lower())
    assert failure["message"].startswith("a placeholder")
    assert "secrets.token_urlsafe(48)" in failure["hint"]


def test_a_value_of_env_example_is_a_placeholder(check: Runner, checkout: Path) -> None:
    copied = "k7Jd93LmQp2ZxW8vRt5NcB1hY4sGfE6aUo"  # random-looking, long enough: only the example betrays it
    (checkout / ".env.example").write_text(
        f"JWT_SECRET={copied}\nSTRIPE_SECRET_KEY={SK_TEST}\n", encoding="utf-8"
    )
    outcome = check({**GOOD_TEST, "JWT_SECRET": copied}, "--offline", "--json")
    assert outcome.failed() == ["stripe_secret_key", "jwt_secret"]
    assert outcome.check("stripe_secret_key")["message"].endswith(
        "is a placeholder (from .env.example, or repeated characters), not a real key"
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("Zq3vN8pL2xT7mR5kW9cB4hJ6fD1sG0a", "too short: 31 characters, at least 32 needed"),
        ("a1" * 20, "too repetitive: fewer than 8 different characters"),
    ],
)
def test_weak_secrets_fail(check: Runner, value: str, message: str) -> None:
    outcome = check({**GOOD_TEST, "QR_SECRET": value}, "--offline", "--json")
    assert outcome.code == 1
    assert outcome.check("qr_secret")["message"] == message


def test_one_secret_for_both_is_a_warning(check: Runner) -> None:
    outcome = check({**GOOD_TEST, "QR_SECRET": JWT}, "--offline", "--json")
    assert outcome.code == 0
    warning = outcome.check("distinct_app_secrets")
    assert warning["status"] == "warn"
    assert warning["message"].startswith("JWT_SECRET and QR_SECRET are the same value:")


def test_distinct_secrets_pass_without_a_warning(check: Runner) -> None:
    outcome = check({**GOOD_TEST, "QR_SECRET": f"{QR},{QR_OLD}"}, "--offline", "--json")
    assert "distinct_app_secrets" not in outcome.statuses()


# -- QR_SECRET, a list of keys ------------------------------------------------------------------------------------

QR_OLD = "Vb7nM1qW4eR8tY2uI6oP0aS3dF5gH9jKlZ"  # 34 characters


def test_a_single_qr_key_passes_with_its_length(check: Runner) -> None:
    outcome = check(GOOD_TEST, "--offline", "--json")
    assert outcome.check("qr_secret")["message"] == f"1 key, {len(QR)} characters"
    assert outcome.check("jwt_secret")["message"] == f"{len(JWT)} characters"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (f"{QR},{QR_OLD}", "2 keys (rolling), 38 and 34 characters"),
        (f" {QR} , {QR_OLD} ,", "2 keys (rolling), 38 and 34 characters"),  # as the server reads the list
        (f"{QR},{QR_OLD},{JWT[::-1]}", "3 keys (rolling), 38, 34 and 38 characters"),
    ],
)
def test_a_rolling_qr_secret_passes(check: Runner, value: str, message: str) -> None:
    outcome = check({**GOOD_TEST, "QR_SECRET": value}, "--offline", "--json")
    assert outcome.code == 0
    assert outcome.check("qr_secret") == {
        "id": "qr_secret",
        "name": "QR_SECRET",
        "status": "pass",
        "message": message,
        "hint": None,
    }
    assert outcome.check("server_start")["status"] == "pass"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (f"{QR},changeme", "key 2 of 2: a placeholder"),
        (f"{QR},{'a1' * 20}", "key 2 of 2: too repetitive: fewer than 8 different characters"),
        (f"{QR[:20]},{QR_OLD}", "key 1 of 2: too short: 20 characters, at least 32 needed"),
    ],
)
def test_each_qr_key_is_checked_and_named_by_its_place(check: Runner, value: str, message: str) -> None:
    outcome = check({**GOOD_TEST, "QR_SECRET": value}, "--offline", "--json")
    assert outcome.code == 1
    failure = outcome.check("qr_secret")
    assert failure["message"].startswith(message)
    assert "list the new key first" in failure["hint"]
    for key in value.split(","):
        assert key not in outcome.out  # a key is named by its place in the list, never shown


def test_every_bad_qr_key_is_named(check: Runner) -> None:
    outcome = check({**GOOD_TEST, "QR_SECRET": f"short-one,{QR},your-qr-secret"}, "--offline", "--json")
    assert outcome.check("qr_secret")["message"] == (
        "key 1 of 3: too short: 9 characters, at least 32 needed;"
        " key 3 of 3: a placeholder (`changeme`, `your-…`, `secret`, a .env.example value…), not a secret"
    )
    assert outcome.failed() == ["qr_secret", "server_start"]
    assert outcome.check("server_start")["message"] == (
        "would refuse to start: QR_SECRET: key 1 of the list is too short: at least 32 characters"
    )


def test_a_qr_key_copied_from_a_list_in_env_example_is_a_placeholder(check: Runner, checkout: Path) -> None:
    copied = "k7Jd93LmQp2ZxW8vRt5NcB1hY4sGfE6aUo"
    (checkout / ".env.example").write_text(f"QR_SECRET={QR_OLD},{copied}\n", encoding="utf-8")
    outcome = check({**GOOD_TEST, "QR_SECRET": f"{QR},{copied}"}, "--offline", "--json")
    assert outcome.failed() == ["qr_secret"]
    assert outcome.check("qr_secret")["message"].startswith("key 2 of 2: a placeholder")


def test_a_qr_secret_of_commas_alone_has_no_key(check: Runner) -> None:
    outcome = check({**GOOD_TEST, "QR_SECRET": " , ,"}, "--offline", "--json")
    assert outcome.check("qr_secret")["status"] == "fail"
    assert outcome.check("qr_secret")["message"] == "no key: only commas and spaces"


def test_jwt_secret_equal_to_any_qr_key_is_a_warning(check: Runner) -> None:
    outcome = check({**GOOD_TEST, "QR_SECRET": f"{QR},{JWT}"}, "--offline", "--json")
    assert outcome.code == 0
    warning = outcome.check("distinct_app_secrets")
    assert warning["status"] == "warn"
    assert warning["message"] == (
        "JWT_SECRET is key 2 of QR_SECRET's 2: whoever learns one can forge both tokens and QR codes"
    )
    assert JWT not in outcome.out


def test_a_qr_key_quoted_alone_is_scrubbed(tmp_path: Path) -> None:
    # One key of the list, pasted into another variable whose error message quotes it back.
    env = {**GOOD_TEST, "QR_SECRET": f"{QR},{QR_OLD}", "GATEWAY_LOG_LEVEL": QR_OLD}
    outcome = gateway(tmp_path, env, "--offline", "--json")
    assert outcome.code == 1
    assert outcome.check("other_settings")["message"] == "GATEWAY_LOG_LEVEL: Invalid enum value '…jKlZ'"
    assert QR_OLD not in outcome.out + outcome.err
    assert QR not in outcome.out + outcome.err


# -- public URL and other settings --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "status", "message"),
    [
        (
            {**GOOD_LIVE, "GATEWAY_PUBLIC_URL": "http://pay.example.com"},
            "fail",
            "http://pay.example.com is not https",
        ),
        (
            {**GOOD_TEST, "GATEWAY_PUBLIC_URL": "http://pay.example.com"},
            "pass",
            "http://pay.example.com (webhooks:",
        ),
        (
            {**GOOD_TEST, "GATEWAY_PUBLIC_URL": "pay.example.com"},
            "fail",
            "'pay.example.com' is not an http(s) URL",
        ),
        (
            {**GOOD_TEST, "GATEWAY_PUBLIC_URL": "https://pay.example.com?x=1"},
            "fail",
            "'https://pay.example.com?x=1' is not an http(s) URL",
        ),
        (
            {**GOOD_TEST, "GATEWAY_PUBLIC_URL": "http://127.0.0.1:3000"},
            "warn",
            "127.0.0.1 cannot be reached by Stripe",
        ),
        (
            {**GOOD_LIVE, "GATEWAY_PUBLIC_URL": "https://localhost"},
            "fail",
            "localhost cannot be reached by Stripe",
        ),
        (
            {**GOOD_TEST, "GATEWAY_PUBLIC_URL": "https://pay.example.com/shop/"},
            "pass",
            "https://pay.example.com/shop (webhooks: https://pay.example.com/shop/webhooks/stripe)",
        ),
    ],
)
def test_public_url(check: Runner, env: dict[str, str], status: str, message: str) -> None:
    outcome = check(env, "--offline", "--json")
    result = outcome.check("public_url")
    assert result["status"] == status
    assert result["message"].startswith(message)
    assert outcome.code == (1 if status == "fail" else 0)


def test_a_public_url_with_credentials_fails_without_showing_them(check: Runner) -> None:
    env = {**GOOD_TEST, "GATEWAY_PUBLIC_URL": "https://admin:hunter2hunter2@pay.example.com/"}

    outcome = check(env, "--offline", "--json")

    assert outcome.check("public_url")["status"] == "fail"
    assert "holds credentials" in outcome.check("public_url")["message"]
    assert "hunter2" not in outcome.out + outcome.err
    assert outcome.code == 1


def test_a_setting_the_server_refuses_fails(check: Runner) -> None:
    outcome = check(
        {**GOOD_TEST, "GATEWAY_PORT": "eighty", "GATEWAY_LOG_LEVEL": "LOUD"}, "--offline", "--json"
    )
    assert outcome.code == 1
    assert outcome.failed() == ["other_settings", "server_start"]
    assert outcome.check("other_settings")["message"] == (
        "GATEWAY_LOG_LEVEL: Invalid enum value 'LOUD'; GATEWAY_PORT: Expected `int`, got `str`"
    )
    assert outcome.check("server_start")["message"].startswith(
        "would refuse to start: invalid configuration:"
    )


# -- where the configuration comes from (the real console script) ------------------------------------------------


def test_dotenv_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    other_key = "sk_test_51HxDotenvSecretKeyQwErTyU0env9"
    dotenv = "\n".join(
        f"{var}={value}" for var, value in {**GOOD_TEST, "STRIPE_SECRET_KEY": other_key}.items()
    )
    (tmp_path / ".env").write_text(dotenv + "\nQR_SECRET=changeme\n", encoding="utf-8")
    outcome = gateway(tmp_path, {"STRIPE_SECRET_KEY": SK_TEST, "JWT_SECRET": "short"}, "--offline", "--json")
    assert outcome.code == 1
    assert outcome.check("stripe_secret_key")["message"] == "sk_test_…tk01 (test mode)"  # the environment's
    assert outcome.failed() == ["jwt_secret", "qr_secret", "server_start"]
    assert outcome.check("server_start")["message"] == (
        "would refuse to start: JWT_SECRET: too short: at least 32 characters;"
        " QR_SECRET: the key is too short: at least 32 characters"
    )
    assert outcome.check("jwt_secret")["hint"].endswith(
        f"JWT_SECRET is set in the environment, which wins over {tmp_path / '.env'}: change it there"
    )
    assert outcome.check("qr_secret")["hint"].endswith(f"QR_SECRET is set in {tmp_path / '.env'}")
    table = gateway(tmp_path, {}, "--offline")
    assert f"configuration from the environment and {tmp_path / '.env'}" in table.out.splitlines()[0]


def test_a_usage_error_exits_2(tmp_path: Path) -> None:
    outcome = gateway(tmp_path, GOOD_TEST, "--bogus")
    assert outcome.code == 2
    assert "unrecognized arguments: --bogus" in outcome.err
    assert outcome.out == ""


def test_help_names_the_exit_codes(tmp_path: Path) -> None:
    outcome = gateway(tmp_path, {}, "--help")
    assert outcome.code == 0
    assert "--offline" in outcome.out
    assert "1  at least one check failed" in outcome.out


def test_an_ascii_terminal_gets_ascii(tmp_path: Path) -> None:
    outcome = gateway(tmp_path, {**GOOD_TEST, "PYTHONIOENCODING": "ascii"}, "--offline")
    assert outcome.code == 0
    assert "+ STRIPE_SECRET_KEY       sk_test_...tk01 (test mode)" in outcome.out


# -- --json -------------------------------------------------------------------------------------------------------


def test_json_shape(check: Runner) -> None:
    outcome = check(
        {**GOOD_TEST, "NODE_ENV": "staging", "STRIPE_SECRET_KEY": SK_LIVE, "JWT_SECRET": "x"},
        "--offline",
        "--json",
    )
    assert outcome.code == 1
    report = outcome.report()
    assert set(report) == {"ok", "node_env", "production", "offline", "summary", "checks", "skipped"}
    assert (report["ok"], report["node_env"], report["production"], report["offline"]) == (
        False,
        "staging",
        False,
        True,
    )
    for item in report["checks"]:
        assert set(item) == {"id", "name", "status", "message", "hint"}
        assert item["status"] in ("pass", "warn", "fail")
        assert isinstance(item["message"], str)
        assert item["message"]
        assert (item["hint"] is None) == (item["status"] == "pass"), item
    for item in report["skipped"]:
        assert set(item) == {"id", "name", "reason"}
    statuses = [item["status"] for item in report["checks"]]
    assert report["summary"] == {
        "pass": statuses.count("pass"),
        "warn": statuses.count("warn"),
        "fail": statuses.count("fail"),
        "skipped": len(report["skipped"]),
    }
    assert outcome.failed() == ["stripe_keys_same_mode", "jwt_secret", "server_start"]
    assert [i for i, s in outcome.statuses().items() if s == "warn"] == ["stripe_mode_for_node_env"]
    assert outcome.out.endswith("}\n")
    assert outcome.err == ""


# -- redaction ----------------------------------------------------------------------------------------------------


def test_redact() -> None:
    assert redact("sk_live_" + "51HxLiveSecretKeyZxCvBnMqWe0abcd") == "sk_live_…abcd"
    assert redact("whsec_" + "0123456789abcdef0123456789ab9f3c") == "whsec_…9f3c"
    assert redact("rk_test_51HxRestrictedKey0wxyz") == "rk_test_…wxyz"
    assert redact("pk_test_51HxPublishKeyAsDf0pk02") == "pk_test_…pk02"
    assert redact("sk_live_short") == "sk_live_…"  # the last 4 of 5 would give most of it away
    assert redact("a-jwt-secret-without-any-prefix") == "…efix"
    assert redact("tiny") == "…"
    assert redact("") == "…"


OTHER_KEY = "sk_live_" + "51HxAnotherLiveKeyNotConfigured0ok9"
SECRETS = [SK_LIVE, OTHER_KEY, WHSEC, WHSEC_OLD, JWT, QR, RK_TEST]


def assert_no_secret(outcome: Outcome, secrets: list[str]) -> None:
    for secret in secrets:
        assert secret not in outcome.out, secret
        assert secret not in outcome.err, secret
        body = secret.split("_")[-1]
        assert body not in outcome.out, secret
        assert body not in outcome.err, secret


def test_secrets_never_appear_whole(tmp_path: Path) -> None:
    """Secrets in their own variables, in the wrong ones, and in values quoted back by an error message."""
    env = {
        **GOOD_LIVE,
        "STRIPE_WEBHOOK_SECRET": f"{WHSEC},{WHSEC_OLD}",
        "STRIPE_PUBLISHABLE_KEY": RK_TEST,  # a secret where a public value belongs
        "STRIPE_API_VERSION": OTHER_KEY,  # quoted back by the version check, and no configured secret
        "GATEWAY_LOG_LEVEL": JWT,  # quoted back by the settings' own validation
        "GATEWAY_MERCHANT_COUNTRY": QR,
        "GATEWAY_PUBLIC_URL": f"https://pay.example.com?token={QR}",
    }
    for args in (["--offline"], ["--offline", "--json"]):
        outcome = gateway(tmp_path, env, *args)
        assert outcome.code == 1
        assert_no_secret(outcome, SECRETS)
        assert "sk_live_…lk03" in outcome.out
        assert "'sk_live_…0ok9' is not a Stripe API version" in outcome.out
        assert "whsec_…9f3c, whsec_…0ld6" in outcome.out
        assert "rk_test_…rk05 is a SECRET key" in outcome.out


def test_a_crash_prints_no_secret(check: Runner, monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(**options: object) -> None:
        raise RuntimeError(f"a bug holding {SK_TEST}, {JWT} and {OTHER_KEY}")

    monkeypatch.setattr(check_payments, "check_configuration", crash)
    outcome = check(GOOD_TEST, "--offline")
    assert outcome.code == 1
    assert outcome.err.startswith("gateway check-payments: crashed\nTraceback")
    assert "RuntimeError: a bug holding sk_test_…tk01, …jw07 and sk_live_…0ok9" in outcome.err
    assert_no_secret(outcome, [SK_TEST, JWT, OTHER_KEY])


def test_a_rejected_key_is_not_echoed(fresh_stripe_emulator: StripeEmulator, tmp_path: Path) -> None:
    outcome = gateway(tmp_path, stripe_env(fresh_stripe_emulator, STRIPE_SECRET_KEY=RK_TEST), "--json")
    assert outcome.code == 1
    assert "rk_test_…rk05" in outcome.check("stripe_authentication")["message"]
    assert_no_secret(outcome, [RK_TEST, WHSEC, JWT, QR])
    assert outcome.err == ""  # nor logged: StripeApi's log line of the refusal is the report's to say


# -- against Stripe (the emulator) --------------------------------------------------------------------------------


def stripe_env(emulator: StripeEmulator, **overrides: str) -> dict[str, str]:
    """The complete development configuration, with Stripe at the emulator."""
    return {**GOOD_TEST, "STRIPE_API_BASE": emulator.api_base, **overrides}


def stripe_post(emulator: StripeEmulator, path: str, params: dict[str, Any]) -> dict[str, Any]:
    """A Stripe API call as the Dashboard would make it (form-encoded, lists as `name[]`)."""
    form = [
        (f"{name}[]", item) if isinstance(value, list) else (name, value)
        for name, value in params.items()
        for item in (value if isinstance(value, list) else [value])
    ]
    request = urllib.request.Request(
        emulator.api_base + path,
        data=urllib.parse.urlencode(form).encode(),
        headers={"Authorization": f"Bearer {emulator.secret_key}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        created: dict[str, Any] = json.load(response)
    return created


def add_endpoint(emulator: StripeEmulator, url: str = WEBHOOK_URL, events: list[str] | None = None) -> str:
    endpoint = stripe_post(
        emulator, "/v1/webhook_endpoints", {"url": url, "enabled_events": events or EVENTS}
    )
    endpoint_id: str = endpoint["id"]
    return endpoint_id


def add_domain(emulator: StripeEmulator, domain: str = "pay.example.com", enabled: bool = True) -> str:
    created = stripe_post(
        emulator, "/v1/payment_method_domains", {"domain_name": domain, "enabled": str(enabled).lower()}
    )
    domain_id: str = created["id"]
    return domain_id


@pytest.fixture
def stripe(fresh_stripe_emulator: StripeEmulator) -> StripeEmulator:
    """The session's emulator, emptied: no webhook endpoint, no payment method domain."""
    return fresh_stripe_emulator


def test_everything_right_passes(stripe: StripeEmulator, tmp_path: Path) -> None:
    endpoint = add_endpoint(stripe)
    domain = add_domain(stripe)
    outcome = gateway(tmp_path, stripe_env(stripe), "--json")
    assert (outcome.code, outcome.err) == (0, "")
    assert outcome.failed() == []
    assert outcome.skipped() == {}
    assert outcome.check("stripe_authentication")["message"] == "Stripe accepts sk_test_…tk01 (test mode)"
    assert (
        outcome.check("webhook_endpoint")["message"]
        == f"{WEBHOOK_URL} ({endpoint}): enabled, sends the 4 events"
    )
    assert (
        outcome.check("apple_pay_domain")["message"]
        == f"pay.example.com ({domain}): enabled, Apple Pay active"
    )
    table = gateway(tmp_path, stripe_env(stripe))
    assert table.code == 0
    assert table.out.splitlines()[-1] == "✓ 16 passed, 0 warnings, 0 failed: ready (exit 0)"


def test_a_rejected_key_fails_and_skips_the_rest(stripe: StripeEmulator, check: Runner) -> None:
    # The emulator, like Stripe for a revoked key, answers 401 to anything but an `sk_` key.
    outcome = check(stripe_env(stripe, STRIPE_SECRET_KEY=RK_TEST), "--json")
    assert outcome.code == 1
    assert outcome.failed() == ["stripe_authentication"]
    failure = outcome.check("stripe_authentication")
    assert failure["message"].startswith(
        "Stripe rejected STRIPE_SECRET_KEY rk_test_…rk05: unknown, revoked or expired"
    )
    assert "https://dashboard.stripe.com/test/apikeys" in failure["hint"]
    assert outcome.skipped() == {
        "webhook_endpoint": "Stripe did not accept the key",
        "apple_pay_domain": "Stripe did not accept the key",
    }


def test_an_unreachable_stripe_fails(check: Runner) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    outcome = check({**GOOD_TEST, "STRIPE_API_BASE": dead}, "--json")
    assert outcome.code == 1
    failure = outcome.check("stripe_authentication")
    assert failure["message"] == "Stripe did not answer (connection)"
    assert "curl -sI https://api.stripe.com" in failure["hint"]


def test_offline_does_not_call_stripe(check: Runner) -> None:
    outcome = check({**GOOD_TEST, "STRIPE_API_BASE": "http://127.0.0.1:9"}, "--offline", "--json")
    assert outcome.code == 0
    assert "stripe_authentication" not in outcome.statuses()


def test_no_webhook_endpoint(stripe: StripeEmulator, check: Runner) -> None:
    add_domain(stripe)
    outcome = check(stripe_env(stripe), "--json")
    assert outcome.code == 1
    assert outcome.failed() == ["webhook_endpoint"]
    failure = outcome.check("webhook_endpoint")
    assert failure["message"] == f"no endpoint for {WEBHOOK_URL} (the account has: none)"
    assert failure["hint"] == (
        f"https://dashboard.stripe.com/test/webhooks → Add endpoint: URL {WEBHOOK_URL}, events {', '.join(EVENTS)};"
        " then put its Signing secret in STRIPE_WEBHOOK_SECRET and restart the gateway"
    )


def test_a_webhook_endpoint_for_another_url(stripe: StripeEmulator, check: Runner) -> None:
    add_domain(stripe)
    add_endpoint(stripe, "https://old.example.com/webhooks/stripe")
    outcome = check(stripe_env(stripe), "--json")
    assert outcome.check("webhook_endpoint")["message"] == (
        f"no endpoint for {WEBHOOK_URL} (the account has: https://old.example.com/webhooks/stripe)"
    )


def test_a_webhook_endpoint_missing_events(stripe: StripeEmulator, check: Runner) -> None:
    add_domain(stripe)
    endpoint = add_endpoint(
        stripe, events=["payment_intent.succeeded", "charge.refunded", "customer.created"]
    )
    outcome = check(stripe_env(stripe), "--json")
    assert outcome.code == 1
    failure = outcome.check("webhook_endpoint")
    assert failure["status"] == "fail"
    assert failure["message"] == (
        f"{WEBHOOK_URL} ({endpoint}) does not send payment_intent.payment_failed, payment_intent.canceled"
    )
    assert failure["hint"].startswith(f"https://dashboard.stripe.com/test/webhooks/{endpoint} → ")
    assert failure["hint"].endswith("add payment_intent.payment_failed, payment_intent.canceled")


def test_a_disabled_webhook_endpoint(stripe: StripeEmulator, check: Runner) -> None:
    add_domain(stripe)
    endpoint = add_endpoint(stripe)
    stripe_post(stripe, f"/v1/webhook_endpoints/{endpoint}", {"disabled": "true"})
    outcome = check(stripe_env(stripe), "--json")
    assert outcome.code == 1
    assert outcome.check("webhook_endpoint")["message"] == (
        f"{WEBHOOK_URL} ({endpoint}) is disabled: Stripe sends it nothing"
    )


def test_a_complete_endpoint_wins_over_an_incomplete_one(stripe: StripeEmulator, check: Runner) -> None:
    add_domain(stripe)
    complete = add_endpoint(stripe, PUBLIC_URL.upper().replace("HTTPS", "https") + "/webhooks/stripe/", ["*"])
    add_endpoint(stripe, events=["charge.refunded"])
    outcome = check(stripe_env(stripe), "--json")
    assert outcome.code == 0
    assert (
        outcome.check("webhook_endpoint")["message"]
        == f"{WEBHOOK_URL} ({complete}): enabled, sends every event"
    )


def test_every_page_of_webhook_endpoints_is_read(stripe: StripeEmulator, check: Runner) -> None:
    add_domain(stripe)
    endpoint = add_endpoint(stripe)  # the oldest: Stripe lists it last, on the second page of 100
    for number in range(100):
        add_endpoint(stripe, f"https://shop{number}.example.com/webhooks/stripe")
    outcome = check(stripe_env(stripe), "--json")
    assert outcome.code == 0
    assert endpoint in outcome.check("webhook_endpoint")["message"]


def test_no_apple_pay_domain(stripe: StripeEmulator, check: Runner) -> None:
    add_endpoint(stripe)
    add_domain(stripe, "other.example.com")
    outcome = check(stripe_env(stripe), "--json")
    assert outcome.code == 1
    assert outcome.failed() == ["apple_pay_domain"]
    failure = outcome.check("apple_pay_domain")
    assert (
        failure["message"]
        == "pay.example.com is not a registered payment method domain: no Apple Pay on the web there"
    )
    assert failure["hint"] == (
        "https://dashboard.stripe.com/test/settings/payment_method_domains → Add a new domain: pay.example.com,"
        " after serving Apple's verification file at"
        " https://pay.example.com/.well-known/apple-developer-merchantid-domain-association"
    )


def test_a_disabled_apple_pay_domain(stripe: StripeEmulator, check: Runner) -> None:
    add_endpoint(stripe)
    domain = add_domain(stripe, enabled=False)
    outcome = check(stripe_env(stripe), "--json")
    assert outcome.code == 1
    assert (
        outcome.check("apple_pay_domain")["message"]
        == f"pay.example.com ({domain}) is registered but disabled"
    )


def test_an_unverified_apple_pay_domain(stripe: StripeEmulator, check: Runner) -> None:
    add_endpoint(stripe)
    domain = add_domain(stripe)
    stripe.set_domain_wallets("pay.example.com", apple_pay="inactive")
    outcome = check(stripe_env(stripe), "--json")
    assert outcome.code == 1
    failure = outcome.check("apple_pay_domain")
    assert failure["message"] == f"pay.example.com ({domain}): Apple Pay is inactive (domain not verified)"
    assert "/.well-known/apple-developer-merchantid-domain-association" in failure["hint"]


def test_the_stripe_checks_need_a_public_url(stripe: StripeEmulator, check: Runner) -> None:
    outcome = check(without(stripe_env(stripe), "GATEWAY_PUBLIC_URL"), "--json")
    assert outcome.failed() == ["public_url"]
    assert outcome.check("stripe_authentication")["status"] == "pass"
    assert outcome.skipped() == {
        "webhook_endpoint": "needs a usable GATEWAY_PUBLIC_URL",
        "apple_pay_domain": "needs a usable GATEWAY_PUBLIC_URL",
    }


# -- GATEWAY_HANDLER_TIMEOUT --------------------------------------------------------------------------------------


def test_a_handler_timeout_shorter_than_one_stripe_call_is_a_warning(check: Runner) -> None:
    short = {
        **GOOD_TEST,
        "GATEWAY_HANDLER_TIMEOUT": "30",
        "STRIPE_TIMEOUT": "20",
        "STRIPE_MAX_NETWORK_RETRIES": "2",
    }
    outcome = check(short, "--offline", "--json")
    assert outcome.code == 0  # a warning, not a failure
    warning = outcome.check("handler_timeout")
    assert warning["status"] == "warn"
    assert warning["message"] == "30 s, not more than one Stripe call may take (20 s x 3 tries = 60 s)"
    # The defaults (90 s against 20 s x 3) say nothing.
    assert "handler_timeout" not in check(GOOD_TEST, "--offline", "--json").statuses()
