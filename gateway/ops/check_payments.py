"""`gateway check-payments`: the seed's `pnpm check:payments`, run before every deployment (and at 3 a.m.).

It reads the configuration exactly as `gateway serve` does (the environment and `./.env`, the environment winning,
through `gateway.settings`), but reports every problem instead of stopping at the first, then asks Stripe whether
the account is set up for it: the key authenticates, a webhook endpoint delivers the four events the gateway
applies to `<public URL>/webhooks/stripe`, and the public URL's host is an Apple Pay domain.

| exit | when |
|---|---|
| 0 | no check failed (warnings allowed) |
| 1 | at least one check failed |
| 2 | usage error (unknown option) |

Secrets never appear whole: every value shown goes through `redact()` (`sk_live_…abcd`), and every text printed,
Stripe's messages included, is scrubbed of anything shaped like a key and of the configured secrets' values.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import enum
import ipaddress
import os
import re
import sys
import traceback
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import msgspec
from loguru import logger

from gateway.redaction import redact
from gateway.settings import (
    ConfigurationError,
    Settings,
    inspect_settings,
    load_settings,
    qr_secrets,
    read_dotenv,
)
from gateway.stripe_api import FailureKind, StripeApi, StripeCallError
from gateway.stripe_api.models import PaymentMethodDomain, WebhookEndpoint
from gateway.webhooks.events import EventType
from gateway.webhooks.route import WEBHOOK_PATH
from gateway.webhooks.signature import parse_webhook_secrets

__all__ = ["Check", "Report", "Skipped", "Status", "add_command", "check_configuration", "redact", "run"]

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1

REQUIRED_EVENTS: Final = tuple(event.value for event in EventType)
"""The events `POST /webhooks/stripe` applies; the endpoint must send each (or `*`)."""
MIN_SECRET_LENGTH: Final = 32
"""JWT_SECRET / each key of QR_SECRET: 32 characters is 256 bits of hex, or more of base64; an HMAC key should be that long."""
MIN_KEY_BODY: Final = 16
"""Characters after `sk_live_`/`pk_test_`/…: Stripe's keys have 24 at least (recent ones about 99), so fewer
means a value cut short when it was pasted."""
FIRST_API_VERSION: Final = datetime.date(2011, 1, 1)
"""Stripe's API versions start in 2011; an earlier date is a typo."""

_SECRET_KEY_PREFIXES: Final = ("sk_live_", "sk_test_", "rk_live_", "rk_test_")
_PUBLISHABLE_KEY_PREFIXES: Final = ("pk_live_", "pk_test_")
_WEBHOOK_SECRET_PREFIX: Final = "whsec_"  # noqa: S105 - a prefix, not a secret
_KEY_BODY: Final = re.compile(r"[A-Za-z0-9]+")
_KEY_SHAPED: Final = re.compile(r"\b(?:(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]+|whsec_[A-Za-z0-9_]+)")
_API_VERSION: Final = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:\.[a-z]+)?")
_SECRET_VARIABLES: Final = (
    "STRIPE_SECRET_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "JWT_SECRET",
    "QR_SECRET",
)
# Values people leave in place, compared with letters and digits only ("your_jwt_secret" = "your-jwt-secret").
_PLACEHOLDERS: Final = frozenset(
    {
        "changeme",
        "secret",
        "password",
        "default",
        "test",
        "mysecret",
        "secretkey",
        "jwtsecret",
        "qrsecret",
        "jwtkey",
        "qrkey",
    }
)
_PLACEHOLDER_MARKERS: Final = ("changeme", "changethis", "replaceme", "placeholder", "example", "insecure")
_GENERATE_SECRET: Final = "python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"  # noqa: S105 - a command

# -- results ------------------------------------------------------------------------------------------------------


class Status(enum.StrEnum):
    PASS = "pass"  # noqa: S105 - a verdict, not a password
    WARN = "warn"
    FAIL = "fail"


class Check(msgspec.Struct, frozen=True, kw_only=True):
    """One line of the report: what was checked, the verdict, what was found, and what to do about it."""

    id: str
    """Stable, for machines: `stripe_secret_key`, `webhook_endpoint`, …"""
    name: str
    """For people: the variable or the thing checked."""
    status: Status
    message: str
    hint: str | None = None
    """What to do (which variable, which Dashboard page, which command); None when nothing is to be done."""


class Skipped(msgspec.Struct, frozen=True, kw_only=True):
    """A check that could not run, and why (`--offline`, or what it needs failed above)."""

    id: str
    name: str
    reason: str


class Summary(msgspec.Struct, frozen=True):
    passed: int = msgspec.field(name="pass")
    warned: int = msgspec.field(name="warn")
    failed: int = msgspec.field(name="fail")
    skipped: int


class Report(msgspec.Struct, frozen=True, kw_only=True):
    """What `--json` prints."""

    ok: bool
    """No check failed (warnings allowed): the exit code is 0."""
    node_env: str
    production: bool
    offline: bool
    summary: Summary
    checks: list[Check]
    skipped: list[Skipped]


def _check(check_id: str, name: str, status: Status, message: str, hint: str | None = None) -> Check:
    return Check(id=check_id, name=name, status=status, message=message, hint=hint)


# -- redaction ----------------------------------------------------------------------------------------------------


def _scrubber(secrets: Iterable[str]) -> Callable[[str], str]:
    """A function that redacts, in any text, whatever looks like a Stripe key or signing secret and every value
    in `secrets` (the last line of defence: Stripe's own messages, exceptions, a value pasted into a wrong variable).
    Values shorter than 8 characters are not searched for: they are no secrets, and would mangle ordinary words."""
    literals = sorted({s for s in secrets if len(s) >= 8}, key=len, reverse=True)

    def scrub(text: str) -> str:
        for literal in literals:
            text = text.replace(literal, redact(literal))
        return _KEY_SHAPED.sub(lambda match: redact(match.group(0)), text)

    return scrub


# -- the configuration as the server reads it --------------------------------------------------------------------


@dataclass(frozen=True)
class _Config:
    values: Mapping[str, str]
    """Variable -> value, as `load_settings` reads them (unset and empty ones are absent)."""
    sources: Mapping[str, str]
    problems: Mapping[str, str]
    settings: Settings
    dotenv: Path
    examples: frozenset[str]
    """Every value of `.env.example` beside `.env`, and each item of a comma-separated one (QR_SECRET's keys): a
    secret equal to one was copied from the example."""

    @property
    def production(self) -> bool:
        return self.settings.is_production

    def get(self, var: str) -> str:
        return self.values.get(var, "")

    def where(self, var: str) -> str:
        """Where to change `var`, for hints: the environment wins over .env, which surprises people at 3 a.m."""
        source = self.sources.get(var)
        if source == "environment" and self.dotenv.is_file():
            return f"{var} is set in the environment, which wins over {self.dotenv}: change it there"
        if source == "environment":
            return f"{var} is set in the environment: change it there"
        if source is not None:
            return f"{var} is set in {self.dotenv}"
        return f"set {var} in the environment or in {self.dotenv}"

    @property
    def test_mode_keys(self) -> bool:
        return self.get("STRIPE_SECRET_KEY").startswith(("sk_test_", "rk_test_"))

    def dashboard(self, page: str) -> str:
        """The Dashboard page in the keys' mode (test-mode pages live under /test/)."""
        return f"https://dashboard.stripe.com/{'test/' if self.test_mode_keys else ''}{page}"

    def secrets(self) -> list[str]:
        found = [self.get(var) for var in _SECRET_VARIABLES if self.get(var)]
        # Lists' items too: one key of a list quoted alone must be scrubbed as well as the whole value.
        found += self.get("STRIPE_WEBHOOK_SECRET").replace(",", " ").split()
        found += qr_secrets(self.get("QR_SECRET"))
        return found


def _read_config(environ: Mapping[str, str] | None, dotenv: Path) -> _Config:
    configured = inspect_settings(environ, dotenv)
    example = dotenv.with_name(".env.example")
    return _Config(
        values=configured.values,
        sources=configured.sources,
        problems=configured.problems,
        settings=configured.settings,
        dotenv=dotenv.absolute(),
        examples=frozenset(
            item
            for value in read_dotenv(example).values()
            for item in (value, *(part.strip() for part in value.split(",")))
            if item
        ),
    )


# -- configuration checks -----------------------------------------------------------------------------------------


def _check_node_env(config: _Config) -> Check:
    name, value = "NODE_ENV", config.settings.node_env
    if config.production:
        return _check("node_env", name, Status.PASS, "production: live keys and an https public URL required")
    if value.strip().lower() in ("production", "prod", "live"):
        return _check(
            "node_env",
            name,
            Status.WARN,
            f"{value!r} is not exactly `production`: the gateway runs in development mode"
            " (test keys accepted, stack traces in error answers)",
            f"if this is production, set NODE_ENV=production ({config.where('NODE_ENV')})",
        )
    default = "" if "NODE_ENV" in config.values else " (default)"
    return _check("node_env", name, Status.PASS, f"{value}{default}: not production, test keys expected")


def _key_problem(var: str, value: str, prefixes: tuple[str, ...], config: _Config) -> str | None:
    """Why `value` is not a usable key of one of `prefixes`, or None."""
    shown = redact(value)
    prefix = next((p for p in prefixes if value.startswith(p)), None)
    if prefix is None:
        if value.startswith(("sk_", "rk_")) and var == "STRIPE_PUBLISHABLE_KEY":
            return f"{shown} is a SECRET key, and the gateway gives STRIPE_PUBLISHABLE_KEY to the app"
        if value.startswith("pk_") and var == "STRIPE_SECRET_KEY":
            return f"{shown} is a publishable key, not a secret key"
        if value.startswith(_WEBHOOK_SECRET_PREFIX):
            return f"{shown} is a webhook signing secret, not an API key"
        return f"{shown} does not start with {', '.join(prefixes)}"
    body = value[len(prefix) :]
    if not _KEY_BODY.fullmatch(body):
        return (
            f"{shown} holds characters Stripe keys never have (spaces, quotes, dots): a copy-paste accident?"
        )
    if len(body) < MIN_KEY_BODY:
        return f"{shown} is too short ({len(body)} characters after {prefix}): cut short when pasted?"
    if value in config.examples or len(set(body)) < 6:
        return f"{shown} is a placeholder (from .env.example, or repeated characters), not a real key"
    return None


def _mode(key: str) -> str:
    return "live" if "_live_" in key[:8] else "test"


def _check_secret_key(config: _Config) -> Check:
    check_id, var = "stripe_secret_key", "STRIPE_SECRET_KEY"
    value = config.get(var)
    if not value:
        return _check(
            check_id,
            var,
            Status.FAIL,
            "not set (without it `gateway serve` runs the local emulator, and refuses to start in production)",
            f"{config.where(var)}: the secret key of Developers → API keys ({config.dashboard('apikeys')})",
        )
    problem = _key_problem(var, value, _SECRET_KEY_PREFIXES, config)
    if problem is not None:
        return _check(
            check_id,
            var,
            Status.FAIL,
            problem,
            f"copy the secret key (sk_…) from {config.dashboard('apikeys')}; {config.where(var)}",
        )
    restricted = ", restricted key" if value.startswith("rk_") else ""
    return _check(check_id, var, Status.PASS, f"{redact(value)} ({_mode(value)} mode{restricted})")


def _check_publishable_key(config: _Config) -> Check:
    check_id, var = "stripe_publishable_key", "STRIPE_PUBLISHABLE_KEY"
    value = config.get(var)
    if not value:
        return _check(
            check_id,
            var,
            Status.FAIL,
            "not set (the app needs it to start the PaymentSheet: stripe.getConfig)",
            f"{config.where(var)}: the publishable key (pk_…) of {config.dashboard('apikeys')}",
        )
    problem = _key_problem(var, value, _PUBLISHABLE_KEY_PREFIXES, config)
    if problem is not None:
        hint = f"copy the publishable key (pk_…) from {config.dashboard('apikeys')}; {config.where(var)}"
        if value.startswith(("sk_", "rk_")):
            hint += "; if the gateway ran with it, roll that secret key there now (the app has seen it)"
        return _check(check_id, var, Status.FAIL, problem, hint)
    return _check(check_id, var, Status.PASS, f"{redact(value)} ({_mode(value)} mode)")


def _usable_key(config: _Config, var: str, prefixes: tuple[str, ...]) -> str | None:
    value = config.get(var)
    if value and _key_problem(var, value, prefixes, config) is None:
        return value
    return None


def _check_same_mode(config: _Config, secret: str, publishable: str) -> Check:
    check_id, name = "stripe_keys_same_mode", "keys' mode"
    if _mode(secret) != _mode(publishable):
        return _check(
            check_id,
            name,
            Status.FAIL,
            f"STRIPE_SECRET_KEY is {_mode(secret)} ({redact(secret)}) but STRIPE_PUBLISHABLE_KEY is"
            f" {_mode(publishable)} ({redact(publishable)}): the app's payments would never reach the gateway's",
            "take both keys from the same mode of https://dashboard.stripe.com/apikeys"
            " (the Test mode switch, top right)",
        )
    return _check(check_id, name, Status.PASS, f"both keys are {_mode(secret)} keys")


def _check_mode_for_env(config: _Config, keys: list[str]) -> Check:
    """Live keys in production; test keys elsewhere (a warning: a staging box with live keys is a choice)."""
    check_id, name = "stripe_mode_for_node_env", "live/test mode"
    modes = {_mode(key) for key in keys}
    if config.production and "test" in modes:
        return _check(
            check_id,
            name,
            Status.FAIL,
            "test keys with NODE_ENV=production: no real payment can succeed, and the gateway refuses to start",
            "set STRIPE_SECRET_KEY and STRIPE_PUBLISHABLE_KEY to the live keys of"
            " https://dashboard.stripe.com/apikeys (Test mode switched off)",
        )
    if not config.production and "live" in modes:
        return _check(
            check_id,
            name,
            Status.WARN,
            f"live keys outside production (NODE_ENV={config.settings.node_env}): real cards would be charged",
            "use test keys (https://dashboard.stripe.com/test/apikeys), or set NODE_ENV=production if this is it",
        )
    mode = "live keys in production" if config.production else "test keys outside production"
    return _check(check_id, name, Status.PASS, mode)


def _check_webhook_secret(config: _Config) -> Check:
    check_id, var = "stripe_webhook_secret", "STRIPE_WEBHOOK_SECRET"
    value = config.get(var)
    hint = (
        f"copy the endpoint's Signing secret (whsec_…, Reveal) from {config.dashboard('webhooks')};"
        f" several, comma-separated, while rolling it; {config.where(var)}"
    )
    if not value:
        return _check(
            check_id,
            var,
            Status.FAIL,
            "not set: no webhook from Stripe can be verified, so none is applied",
            hint,
        )
    if var in config.problems:
        return _check(check_id, var, Status.FAIL, config.problems[var], hint)
    secrets = parse_webhook_secrets(value)
    if any(secret in config.examples for secret in secrets):
        return _check(check_id, var, Status.FAIL, "a placeholder copied from .env.example", hint)
    shown = ", ".join(redact(secret) for secret in secrets)
    count = "1 secret" if len(secrets) == 1 else f"{len(secrets)} secrets (rolling)"
    return _check(check_id, var, Status.PASS, f"{count}: {shown}")


def _api_version_problem(value: str, today: datetime.date) -> str | None:
    match = _API_VERSION.fullmatch(value)
    if match is None:
        return f"{value!r} is not a Stripe API version: YYYY-MM-DD, optionally .name (2024-06-20, 2024-10-28.acacia)"
    try:
        date = datetime.date(*(int(part) for part in match.groups()))
    except ValueError:
        return f"{value!r} is not a calendar date"
    if date < FIRST_API_VERSION:
        return f"{value!r} is before Stripe's first API version (2011)"
    if date > today:
        return f"{value!r} is in the future"
    return None


def _check_api_version(config: _Config, today: datetime.date) -> Check:
    check_id, var = "stripe_api_version", "STRIPE_API_VERSION"
    value = config.get(var) or config.settings.stripe_api_version
    problem = _api_version_problem(value, today)
    if problem is not None:
        return _check(
            check_id,
            var,
            Status.FAIL,
            problem,
            "use the version the gateway was tested with, 2024-06-20 (Developers → API version in the Dashboard"
            f" shows the account's); {config.where(var)}",
        )
    default = "" if var in config.values else " (default)"
    return _check(check_id, var, Status.PASS, f"{value}{default}, pinned on every Stripe call")


def _app_secret_problem(value: str, config: _Config) -> str | None:
    letters = re.sub(r"[^a-z0-9]", "", value.lower())
    if (
        value in config.examples
        or letters in _PLACEHOLDERS
        or letters.startswith("your")
        or any(marker in letters for marker in _PLACEHOLDER_MARKERS)
    ):
        return "a placeholder (`changeme`, `your-…`, `secret`, a .env.example value…), not a secret"
    if len(value) < MIN_SECRET_LENGTH:
        return f"too short: {len(value)} characters, at least {MIN_SECRET_LENGTH} needed"
    if len(set(value)) < 8:
        return "too repetitive: fewer than 8 different characters"
    return None


def _check_app_secret(config: _Config, var: str, what: str) -> Check:
    check_id = var.lower()
    value = config.get(var)
    hint = f"generate one: `{_GENERATE_SECRET}`; {config.where(var)}"
    if not value:
        return _check(check_id, var, Status.FAIL, f"not set: {what} cannot be signed safely", hint)
    problem = _app_secret_problem(value, config)
    if problem is not None:
        return _check(check_id, var, Status.FAIL, problem, hint)
    return _check(check_id, var, Status.PASS, f"{len(value)} characters")


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _check_qr_secret(config: _Config) -> Check:
    """QR_SECRET is a list of keys, newest first (the first signs, every one verifies): each is checked as a
    JWT_SECRET would be, and a problem names the key by its place in the list, never by its value."""
    check_id, var = "qr_secret", "QR_SECRET"
    value = config.get(var)
    keys = qr_secrets(value)
    hint = (
        f"generate one: `{_GENERATE_SECRET}`; while rolling it, list the new key first, comma-separated, and drop"
        f" the old one later; {config.where(var)}"
    )
    if not value:
        return _check(check_id, var, Status.FAIL, "not set: QR codes cannot be signed safely", hint)
    if not keys:
        return _check(check_id, var, Status.FAIL, "no key: only commas and spaces", hint)
    problems = [
        (n, problem) for n, key in enumerate(keys, 1) if (problem := _app_secret_problem(key, config))
    ]
    if problems:
        if len(keys) == 1:
            message = problems[0][1]
        else:
            message = "; ".join(f"key {n} of {len(keys)}: {problem}" for n, problem in problems)
        return _check(check_id, var, Status.FAIL, message, hint)
    lengths = _and([str(len(key)) for key in keys])
    count = "1 key" if len(keys) == 1 else f"{len(keys)} keys (rolling)"
    return _check(check_id, var, Status.PASS, f"{count}, {lengths} characters")


def _check_distinct_secrets(config: _Config) -> Check | None:
    jwt, keys = config.get("JWT_SECRET"), qr_secrets(config.get("QR_SECRET"))
    if not jwt or jwt not in keys:
        return None
    if len(keys) == 1:
        message = "JWT_SECRET and QR_SECRET are the same value"
    else:
        message = f"JWT_SECRET is key {keys.index(jwt) + 1} of QR_SECRET's {len(keys)}"
    return _check(
        "distinct_app_secrets",
        "JWT_SECRET ≠ QR_SECRET",
        Status.WARN,
        f"{message}: whoever learns one can forge both tokens and QR codes",
        f"give QR_SECRET its own key: `{_GENERATE_SECRET}` (list it first, keep the shared one after it until the"
        " codes it signed no longer matter)",
    )


@dataclass(frozen=True)
class _PublicUrl:
    url: str
    """Without a trailing slash."""
    scheme: str
    host: str

    @property
    def webhook_url(self) -> str:
        return self.url + WEBHOOK_PATH

    @property
    def local(self) -> bool:
        """A host Stripe cannot reach from the internet."""
        if self.host == "localhost" or self.host.endswith((".localhost", ".local")):
            return True
        try:
            address = ipaddress.ip_address(self.host)
        except ValueError:
            return False
        return address.is_private or address.is_loopback or address.is_unspecified or address.is_link_local


def _parse_public_url(value: str) -> _PublicUrl | None:
    try:
        parts = urllib.parse.urlsplit(value)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not host or parts.query or parts.fragment or parts.username:
        return None
    return _PublicUrl(value.rstrip("/"), parts.scheme, host.lower())


def _check_public_url(config: _Config) -> tuple[Check, _PublicUrl | None]:
    check_id, var = "public_url", "GATEWAY_PUBLIC_URL"
    value = config.get(var)
    example = "GATEWAY_PUBLIC_URL=https://your-domain.com"
    if not value:
        fallback = config.settings.public_url
        message = f"not set: Stripe's webhooks would be expected at {fallback}{WEBHOOK_PATH}"
        return _check(check_id, var, Status.FAIL, message, f"{example} ({config.where(var)})"), None
    if "@" in urllib.parse.urlsplit(value).netloc:
        # Never shown: what precedes the @ may be a password.
        message = "holds credentials (user:password@): a public URL must not; they are not shown here"
        return _check(check_id, var, Status.FAIL, message, f"{example} ({config.where(var)})"), None
    public = _parse_public_url(value)
    if public is None:
        message = f"{value!r} is not an http(s) URL with a host (and no query)"
        return _check(check_id, var, Status.FAIL, message, f"{example} ({config.where(var)})"), None
    if config.production and public.scheme != "https":
        return (
            _check(
                check_id,
                var,
                Status.FAIL,
                f"{public.url} is not https, which production requires (Stripe sends live events to https only)",
                f"serve the gateway behind TLS and set {var}=https://{public.host}… ({config.where(var)})",
            ),
            public,
        )
    if public.local:
        status = Status.FAIL if config.production else Status.WARN
        message = f"{public.host} cannot be reached by Stripe: no webhook will arrive"
        hint = (
            "set the address the internet reaches; for local tests, `stripe listen --forward-to` the gateway"
        )
        return _check(check_id, var, status, message, hint), public
    return _check(check_id, var, Status.PASS, f"{public.url} (webhooks: {public.webhook_url})"), public


_COVERED_PROBLEMS: Final = frozenset(
    {"STRIPE_WEBHOOK_SECRET", "STRIPE_API_VERSION", "JWT_SECRET", "QR_SECRET"}
)


def _check_other_settings(config: _Config) -> Check:
    problems = {var: text for var, text in config.problems.items() if var not in _COVERED_PROBLEMS}
    if problems:
        listed = "; ".join(f"{var}: {text}" for var, text in sorted(problems.items()))
        return _check(
            "other_settings",
            "other settings",
            Status.FAIL,
            listed,
            f"fix {', '.join(sorted(problems))} (`gateway --help` says what each takes)",
        )
    return _check("other_settings", "other settings", Status.PASS, "every other variable is valid")


def _check_server_start(environ: Mapping[str, str] | None, dotenv: Path) -> Check:
    """What `gateway serve` itself says of this configuration: the same loader, so the two cannot disagree."""
    try:
        load_settings(environ, dotenv)
    except ConfigurationError as error:
        return _check(
            "server_start",
            "gateway serve",
            Status.FAIL,
            f"would refuse to start: {error}",
            "fix the variables it names (the checks above say how)",
        )
    return _check("server_start", "gateway serve", Status.PASS, "accepts this configuration")


def _check_api_base(config: _Config) -> Check | None:
    base = config.settings.stripe_api_base
    if not base:
        return None
    if config.production:
        return _check(
            "stripe_api_base",
            "STRIPE_API_BASE",
            Status.WARN,
            f"{base}: Stripe calls go there, not to api.stripe.com",
            f"unset STRIPE_API_BASE in production ({config.where('STRIPE_API_BASE')})",
        )
    return _check("stripe_api_base", "STRIPE_API_BASE", Status.PASS, f"Stripe calls go to {base}")


def _check_handler_timeout(config: _Config) -> Check | None:
    """A request cut off (GATEWAY_HANDLER_TIMEOUT) before one Stripe call may give up (STRIPE_TIMEOUT for each
    try) is answered 408 while Stripe is merely slow: safe to retry, but such a call would never succeed."""
    settings = config.settings
    budget = settings.stripe_timeout * (settings.stripe_max_network_retries + 1)
    if settings.gateway_handler_timeout > budget:
        return None
    return _check(
        "handler_timeout",
        "GATEWAY_HANDLER_TIMEOUT",
        Status.WARN,
        f"{settings.gateway_handler_timeout:g} s, not more than one Stripe call may take"
        f" ({settings.stripe_timeout:g} s x {settings.stripe_max_network_retries + 1} tries = {budget:g} s)",
        "raise GATEWAY_HANDLER_TIMEOUT above STRIPE_TIMEOUT x (STRIPE_MAX_NETWORK_RETRIES + 1), or lower those",
    )


@dataclass
class _Results:
    checks: list[Check]
    skipped: list[Skipped]

    def add(self, check: Check | None) -> None:
        if check is not None:
            self.checks.append(check)

    def skip(self, names: Mapping[str, str], reason: str) -> None:
        self.skipped.extend(Skipped(id=i, name=n, reason=reason) for i, n in names.items())


def _configuration_checks(config: _Config, results: _Results, today: datetime.date) -> None:
    results.add(_check_node_env(config))
    results.add(_check_secret_key(config))
    results.add(_check_publishable_key(config))
    secret = _usable_key(config, "STRIPE_SECRET_KEY", _SECRET_KEY_PREFIXES)
    publishable = _usable_key(config, "STRIPE_PUBLISHABLE_KEY", _PUBLISHABLE_KEY_PREFIXES)
    if secret and publishable:
        results.add(_check_same_mode(config, secret, publishable))
    else:
        results.skip({"stripe_keys_same_mode": "keys' mode"}, "needs both keys usable")
    keys = [key for key in (secret, publishable) if key]
    if keys:
        results.add(_check_mode_for_env(config, keys))
    else:
        results.skip({"stripe_mode_for_node_env": "live/test mode"}, "needs a usable key")
    results.add(_check_webhook_secret(config))
    results.add(_check_api_version(config, today))
    results.add(_check_app_secret(config, "JWT_SECRET", "the app's bearer tokens"))
    results.add(_check_qr_secret(config))
    results.add(_check_distinct_secrets(config))
    results.add(_check_handler_timeout(config))


# -- Stripe checks ------------------------------------------------------------------------------------------------

_STRIPE_CHECKS: Final = {
    "stripe_authentication": "Stripe API key",
    "webhook_endpoint": "webhook endpoint",
    "apple_pay_domain": "Apple Pay domain",
}
_NEEDS_PUBLIC_URL: Final = {k: v for k, v in _STRIPE_CHECKS.items() if k != "stripe_authentication"}


def _request_id(failure: StripeCallError) -> str:
    return f" (Stripe request {failure.request_id})" if failure.request_id else ""


def _call_failure(check_id: str, name: str, failure: StripeCallError, config: _Config, needs: str) -> Check:
    """A Stripe call that failed, in words an operator can act on."""
    if failure.kind is FailureKind.AUTHENTICATION and failure.http_status == 403:
        return _check(
            check_id,
            name,
            Status.FAIL,
            f"the key may not {needs}{_request_id(failure)}",
            f"give the restricted key that permission at {config.dashboard('apikeys')}, or use the secret key",
        )
    if failure.kind is FailureKind.AUTHENTICATION:
        key = redact(config.get("STRIPE_SECRET_KEY"))
        return _check(
            check_id,
            name,
            Status.FAIL,
            f"Stripe rejected STRIPE_SECRET_KEY {key}: unknown, revoked or expired{_request_id(failure)}",
            f"copy the current secret key from {config.dashboard('apikeys')} (roll it there if it leaked);"
            f" {config.where('STRIPE_SECRET_KEY')}",
        )
    if failure.kind in (FailureKind.CONNECTION, FailureKind.TIMEOUT):
        return _check(
            check_id,
            name,
            Status.FAIL,
            f"Stripe did not answer ({failure.kind.value})",
            "check outbound HTTPS to api.stripe.com from this host (`curl -sI https://api.stripe.com`: proxy,"
            " firewall, DNS) and https://status.stripe.com; `--offline` checks the configuration alone",
        )
    return _check(
        check_id,
        name,
        Status.FAIL,
        f"Stripe answered {failure.kind.value}: {failure.message}{_request_id(failure)}",
        "run the check again in a minute; if it persists, see https://status.stripe.com",
    )


async def _check_authentication(api: StripeApi, config: _Config) -> Check:
    check_id, name = "stripe_authentication", _STRIPE_CHECKS["stripe_authentication"]
    try:
        await api.ping()
    except StripeCallError as failure:
        return _call_failure(check_id, name, failure, config, "read PaymentIntents")
    key = config.get("STRIPE_SECRET_KEY")
    return _check(check_id, name, Status.PASS, f"Stripe accepts {redact(key)} ({_mode(key)} mode)")


def _same_url(a: str, b: str) -> bool:
    """Equal as Stripe would call them: scheme and host in any case, a trailing slash or not."""
    left, right = urllib.parse.urlsplit(a), urllib.parse.urlsplit(b)
    return (left.scheme.lower(), left.netloc.lower(), left.path.rstrip("/"), left.query) == (
        right.scheme.lower(),
        right.netloc.lower(),
        right.path.rstrip("/"),
        right.query,
    )


def _missing_events(endpoint: WebhookEndpoint) -> list[str]:
    if "*" in endpoint.enabled_events:
        return []
    return [event for event in REQUIRED_EVENTS if event not in endpoint.enabled_events]


def _best_endpoint(endpoints: list[WebhookEndpoint]) -> WebhookEndpoint:
    """Of several endpoints for the URL, the one closest to right: enabled first, then fewest events missing."""
    return min(endpoints, key=lambda e: (e.status != "enabled", len(_missing_events(e))))


async def _check_webhook_endpoint(api: StripeApi, config: _Config, public: _PublicUrl) -> Check:
    check_id, name = "webhook_endpoint", _STRIPE_CHECKS["webhook_endpoint"]
    try:
        endpoints = await api.list_webhook_endpoints()
    except StripeCallError as failure:
        return _call_failure(check_id, name, failure, config, "read webhook endpoints")
    url, page = public.webhook_url, config.dashboard("webhooks")
    matching = [endpoint for endpoint in endpoints if _same_url(endpoint.url, url)]
    if not matching:
        others = ", ".join(endpoint.url for endpoint in endpoints[:3]) or "none"
        return _check(
            check_id,
            name,
            Status.FAIL,
            f"no endpoint for {url} (the account has: {others})",
            f"{page} → Add endpoint: URL {url}, events {', '.join(REQUIRED_EVENTS)};"
            " then put its Signing secret in STRIPE_WEBHOOK_SECRET and restart the gateway",
        )
    endpoint = _best_endpoint(matching)
    if endpoint.status != "enabled":
        return _check(
            check_id,
            name,
            Status.FAIL,
            f"{url} ({endpoint.id}) is {endpoint.status}: Stripe sends it nothing",
            f"{page}/{endpoint.id} → ⋯ → Enable endpoint (Stripe disables one that failed for days: check the"
            " gateway's logs for webhook_signature_invalid)",
        )
    missing = _missing_events(endpoint)
    if missing:
        return _check(
            check_id,
            name,
            Status.FAIL,
            f"{url} ({endpoint.id}) does not send {', '.join(missing)}",
            f"{page}/{endpoint.id} → ⋯ → Update details → Select events: add {', '.join(missing)}",
        )
    events = "every event" if "*" in endpoint.enabled_events else f"the {len(REQUIRED_EVENTS)} events"
    return _check(check_id, name, Status.PASS, f"{url} ({endpoint.id}): enabled, sends {events}")


def _best_domain(domains: list[PaymentMethodDomain]) -> PaymentMethodDomain:
    return min(domains, key=lambda d: (not d.enabled, d.apple_pay.status != "active"))


async def _check_apple_pay_domain(api: StripeApi, config: _Config, public: _PublicUrl) -> Check:
    check_id, name = "apple_pay_domain", _STRIPE_CHECKS["apple_pay_domain"]
    try:
        domains = await api.list_payment_method_domains(public.host)
    except StripeCallError as failure:
        return _call_failure(check_id, name, failure, config, "read payment method domains")
    page = config.dashboard("settings/payment_method_domains")
    verification = f"https://{public.host}/.well-known/apple-developer-merchantid-domain-association"
    if not domains:
        return _check(
            check_id,
            name,
            Status.FAIL,
            f"{public.host} is not a registered payment method domain: no Apple Pay on the web there",
            f"{page} → Add a new domain: {public.host}, after serving Apple's verification file at {verification}",
        )
    domain = _best_domain(domains)
    if not domain.enabled:
        return _check(
            check_id,
            name,
            Status.FAIL,
            f"{public.host} ({domain.id}) is registered but disabled",
            f"{page} → {public.host} → Enable",
        )
    if domain.apple_pay.status != "active":
        return _check(
            check_id,
            name,
            Status.FAIL,
            f"{public.host} ({domain.id}): Apple Pay is {domain.apple_pay.status} (domain not verified)",
            f"serve Apple's verification file at {verification}, then {page} → {public.host} → Validate",
        )
    return _check(check_id, name, Status.PASS, f"{public.host} ({domain.id}): enabled, Apple Pay active")


def _stripe_settings(config: _Config) -> Settings:
    # The server's own settings, with a short leash: an operator waits for this answer, and a check that hangs
    # for the server's 20 s x 3 tries on a dead network says less than one that fails in 10 s.
    settings = config.settings
    return msgspec.structs.replace(
        settings,
        stripe_timeout=min(settings.stripe_timeout, 10.0),
        stripe_max_network_retries=min(settings.stripe_max_network_retries, 1),
    )


async def _stripe_checks(config: _Config, public: _PublicUrl | None, results: _Results) -> None:
    api = StripeApi(_stripe_settings(config))
    # StripeApi logs each failed call; here the report says it (with Stripe's request id), once, in words.
    logger.disable("gateway.stripe_api")
    try:
        authentication = await _check_authentication(api, config)
        results.add(authentication)
        if authentication.status is Status.FAIL:
            results.skip(_NEEDS_PUBLIC_URL, "Stripe did not accept the key")
        elif public is None:
            results.skip(_NEEDS_PUBLIC_URL, "needs a usable GATEWAY_PUBLIC_URL")
        else:
            webhook, domain = await asyncio.gather(
                _check_webhook_endpoint(api, config, public), _check_apple_pay_domain(api, config, public)
            )
            results.add(webhook)
            results.add(domain)
    finally:
        logger.enable("gateway.stripe_api")
        await api.close()


# -- the whole check ----------------------------------------------------------------------------------------------


def check_configuration(
    environ: Mapping[str, str] | None = None,
    dotenv: Path = Path(".env"),
    *,
    offline: bool = False,
    today: datetime.date | None = None,
) -> Report:
    """Every check, in the order a person fixes things: the configuration, then what Stripe says of it.

    Every text in the report is already scrubbed of secrets."""
    config = _read_config(environ, dotenv)
    results = _Results([], [])
    _configuration_checks(config, results, today or datetime.datetime.now(datetime.UTC).date())
    public_check, public = _check_public_url(config)
    results.add(public_check)
    results.add(_check_other_settings(config))
    results.add(_check_server_start(environ, dotenv))
    results.add(_check_api_base(config))
    if offline:
        results.skip(_STRIPE_CHECKS, "--offline")
    elif _usable_key(config, "STRIPE_SECRET_KEY", _SECRET_KEY_PREFIXES) is None:
        results.skip(_STRIPE_CHECKS, "needs a usable STRIPE_SECRET_KEY")
    else:
        asyncio.run(_stripe_checks(config, public, results))
    return _report(config, results, offline, _scrubber(config.secrets()))


def _report(config: _Config, results: _Results, offline: bool, scrub: Callable[[str], str]) -> Report:
    checks = [
        msgspec.structs.replace(
            check, message=scrub(check.message), hint=scrub(check.hint) if check.hint else None
        )
        for check in results.checks
    ]
    skipped = [msgspec.structs.replace(skip, reason=scrub(skip.reason)) for skip in results.skipped]
    count = {status: sum(check.status is status for check in checks) for status in Status}
    return Report(
        ok=count[Status.FAIL] == 0,
        node_env=scrub(config.settings.node_env),
        production=config.production,
        offline=offline,
        summary=Summary(count[Status.PASS], count[Status.WARN], count[Status.FAIL], len(skipped)),
        checks=checks,
        skipped=skipped,
    )


# -- output -------------------------------------------------------------------------------------------------------

_SYMBOLS: Final = {Status.PASS: "✓", Status.WARN: "!", Status.FAIL: "✗"}
_ASCII: Final = str.maketrans({"✓": "+", "✗": "x", "…": "...", "→": "->", "≠": "!=", "⋯": "...", "·": "-"})


def format_table(report: Report, dotenv: Path) -> str:
    """The report for a person: one line per check, and under each failure or warning what to do."""
    source = f"the environment and {dotenv.absolute()}" if dotenv.is_file() else "the environment (no .env)"
    lines = [f"gateway check-payments · NODE_ENV={report.node_env} · configuration from {source}", ""]
    width = max((len(check.name) for check in report.checks), default=0)
    for check in report.checks:
        lines.append(f"{_SYMBOLS[check.status]} {check.name:<{width}}  {check.message}")
        if check.hint and check.status is not Status.PASS:
            lines.append(f"  {'':<{width}}  → {check.hint}")
    if report.skipped:
        reasons: dict[str, list[str]] = {}
        for skip in report.skipped:
            reasons.setdefault(skip.reason, []).append(skip.name)
        for reason, names in reasons.items():
            lines.append(f"- not checked ({reason}): {', '.join(names)}")
    lines += ["", _verdict(report)]
    return "\n".join(lines) + "\n"


def _verdict(report: Report) -> str:
    counts = report.summary
    tally = (
        f"{counts.passed} passed, {counts.warned} warning{'s' * (counts.warned != 1)}, {counts.failed} failed"
    )
    if not report.ok:
        return f"✗ {tally}: fix the failures above, then run `gateway check-payments` again (exit 1)"
    if counts.warned:
        return f"! {tally}: no failure; read the warnings (exit 0)"
    return f"✓ {tally}: ready (exit 0)"


def _write(text: str) -> None:
    # The symbols are UTF-8; a terminal or pipe set to ASCII gets their ASCII spellings rather than a crash.
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    try:
        text.encode(encoding)
    except UnicodeEncodeError:
        text = text.translate(_ASCII).encode(encoding, "replace").decode(encoding)
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:  # `gateway check-payments | head`: the reader left, nothing more to say
        pass


def _any_secrets(dotenv: Path) -> list[str]:
    """Every configured value, to scrub a crash's traceback with (even when the configuration is what crashed)."""
    try:
        return list(inspect_settings(None, dotenv).values.values())
    except Exception:  # an unreadable .env: the environment's values at least
        return [os.environ.get(var, "") for var in _SECRET_VARIABLES]


def run(args: argparse.Namespace, settings: Settings | None = None) -> int:
    """`gateway check-payments [--json] [--offline]`: reads the configuration itself (`settings` is unused: the
    command line does not load it for this command, so that a configuration the server refuses can be reported)."""
    dotenv = Path(".env")
    try:
        report = check_configuration(dotenv=dotenv, offline=args.offline)
    except Exception:  # a bug here must not print a secret in a traceback's message
        sys.stderr.write(
            _scrubber(_any_secrets(dotenv))(f"gateway check-payments: crashed\n{traceback.format_exc()}")
        )
        return EXIT_FAILED
    if args.json:
        _write(msgspec.json.format(msgspec.json.encode(report), indent=2).decode() + "\n")
    else:
        _write(format_table(report, dotenv))
    return EXIT_OK if report.ok else EXIT_FAILED


_DESCRIPTION: Final = """\
Check the payment configuration before a deployment (the seed's `pnpm check:payments`).

Reads the configuration as `gateway serve` does (the environment and ./.env; the environment wins) and checks:
the Stripe keys (present, well-formed, same mode, live in production), STRIPE_WEBHOOK_SECRET, STRIPE_API_VERSION,
JWT_SECRET and each key of QR_SECRET (no placeholders, 32+ characters, not the same), GATEWAY_PUBLIC_URL
(https in production); then asks Stripe: the key authenticates, a webhook endpoint for
GATEWAY_PUBLIC_URL/webhooks/stripe is enabled and sends payment_intent.succeeded, payment_intent.payment_failed,
payment_intent.canceled and charge.refunded, and the public URL's host is a payment method domain with Apple Pay
active.

Secrets are shown as sk_live_…abcd only."""

_EPILOG: Final = """\
exit codes:
  0  no check failed (warnings allowed)
  1  at least one check failed
  2  usage error"""


def add_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `gateway check-payments`."""
    parser = commands.add_parser(
        "check-payments",
        help="check the payment configuration: keys, secrets, API version, webhook endpoint, Apple Pay domain",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--json", action="store_true", help="print a JSON document (each check: name, status, message, hint)"
    )
    parser.add_argument(
        "--offline", action="store_true", help="check the configuration only; do not call Stripe"
    )
    # `gateway.cli.main` then runs this without loading the settings first: it reports on what the server refuses.
    parser.set_defaults(run=run, checks_configuration=True)
