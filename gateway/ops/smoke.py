"""`gateway smoke --url https://…`: the seed's `pnpm test:smoke`, against a running deployment.

Over plain HTTP (aiohttp's client, the tRPC wire format), as the app and the on-call engineer's `curl` see the
gateway, it runs these steps and prints each as it ends, with ✓/⚠/✗/-, its name, its duration and what it
checked (or what went wrong and where to look):

| step | what |
|---|---|
| `health` | `GET /metrics/payments/health` answers 200, `healthy` (`degraded` is a warning); 503/`unhealthy` fails, naming the failing checks |
| `metrics` | `GET /metrics/payments` answers the seed's six fields, in its formats |
| `config` | `stripe.getConfig`: a publishable key, `testMode` a boolean (of the key's mode) |
| `payment` | only when the payment is skipped (`--skip-payment`), refused (a live-mode gateway without `--allow-live`) or allowed on a live-mode gateway (a warning) |
| `payment.create` | `stripe.createPaymentIntent` for a new order `smoke-<UTC time>-<random>`: `pi_…`, a client secret, `requires_payment_method` |
| `payment.status` | `stripe.getPaymentStatus` of that order |
| `payment.cancel` | `stripe.cancelPaymentIntent`: nothing is left open (a failure says what to cancel by hand) |
| `bad-input` | `stripe.createPaymentIntent` with amount -5 is `BAD_REQUEST` (400) naming `amount` in `data.issues` |
| `unknown-procedure` | an unknown procedure is `NOT_FOUND` (404) |

The payment procedures need a signed-in caller, so the run authenticates (`Authorization: Bearer <JWT>`) with, in
this order: `--token TOKEN`; the `GATEWAY_SMOKE_TOKEN` variable; a 5-minute token for user `smoke-test` signed with
the local configuration's `JWT_SECRET` (the environment, then `.env`, read as the gateway reads them; outside
production, the offline demo's generated `data/dev-secrets.json`), which works when this machine shares the
deployment's secret; else it runs as a guest, which works when the gateway has guest checkout on
(`GATEWAY_GUEST_CHECKOUT=true`): the order is then read back and canceled with its client secret. A step the
gateway answers UNAUTHORIZED fails with a hint naming `--token` and `JWT_SECRET`.

A failed step does not stop the independent ones after it; the payment's follow-ups are skipped when its create
was refused (a 4xx answer); after no answer or a 5xx, the cancel is still tried, as the intent may exist. Exit codes: 0 every
step passed (warnings allowed), 1 a step failed, 2 a usage error (`--url` not an http(s) base address, a malformed
`--header` or `--token`, an unknown currency, a JWT_SECRET too short to sign with), 130 interrupted (an intent already created is canceled first).

Nothing secret is printed whole: client secrets show as `pi_…_secret_…`, secret keys as `sk_live_…abcd`, the
bearer token and the values given with `--header` not at all.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import contextvars
import datetime
import io
import os
import re
import secrets
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal, TextIO

import aiohttp
import msgspec
from yarl import URL

from gateway.auth.tokens import issue_token
from gateway.dev_secrets import DEV_SECRETS_FILE
from gateway.payments.currencies import MINIMUM_CHARGE, amount_problem, normalise_currency
from gateway.settings import Settings, inspect_settings

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "SMOKE_USER",
    "TOKEN_ENV",
    "Auth",
    "SmokeOptions",
    "Step",
    "UsageError",
    "add_command",
    "format_json",
    "format_step",
    "format_summary",
    "parse_base_url",
    "parse_header",
    "redact",
    "resolve_auth",
    "run",
    "run_smoke",
]

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2
EXIT_INTERRUPTED: Final = 130

DEFAULT_TIMEOUT: Final = 10.0
DEFAULT_CURRENCY: Final = "eur"
DEFAULT_AMOUNT: Final = 100
"""Minor units; raised to Stripe's minimum for currencies whose minimum is higher (HKD, SEK, MXN, ...)."""
BAD_AMOUNT: Final = -5
HEALTH_PATH: Final = "/metrics/payments/health"
METRICS_PATH: Final = "/metrics/payments"
TRPC_PATH: Final = "/trpc"
UNKNOWN_PROCEDURE: Final = "stripe.smokeNoSuchProcedure"
"""Under `stripe.` so that a proxy routing only `/trpc/stripe.*` to the gateway is probed too. The gateway counts
unknown paths as `unknown`, not as payment requests."""
SUMMARY_FIELDS: Final = (
    "totalPayments",
    "successCount",
    "failureCount",
    "successRate",
    "averageResponseTime",
    "lastUpdated",
)
USER_AGENT: Final = "gateway-smoke"
SNIPPET_CHARS: Final = 120
ANSWER_TEXT_CHARS: Final = 4000
"""Kept of a body that is not JSON: redacted whole, then cut to SNIPPET_CHARS."""
MESSAGE_CHARS: Final = 200
INTERRUPT_CANCEL_TIMEOUT: Final = 5.0
TOKEN_ENV: Final = "GATEWAY_SMOKE_TOKEN"  # noqa: S105 (the variable's name, not a secret)
SMOKE_USER: Final = "smoke-test"
"""The user a token minted from the local JWT_SECRET names: its orders are told apart in the audit trail."""
MINTED_TOKEN_SECONDS: Final = 300
"""Five minutes: a run takes seconds, and a token that leaked anyway is soon worthless."""

Status = Literal["pass", "warn", "fail", "skip"]
MARKS: Final[dict[Status, str]] = {"pass": "✓", "warn": "⚠", "fail": "✗", "skip": "-"}
ASCII_MARKS: Final[dict[Status, str]] = {"pass": "ok", "warn": "WARN", "fail": "FAIL", "skip": "skip"}

_RATE: Final = re.compile(r"^(?:100|[1-9]?[0-9])\.[0-9]{2}%$")
_SECONDS: Final = re.compile(r"^[0-9]+\.[0-9]{3}s$")
_ISO_MS_Z: Final = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$")
_HEADER_NAME: Final = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


class UsageError(ValueError):
    """A command-line value that cannot work: exit 2."""


# -- what the steps report ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    status: Status
    duration_ms: int
    detail: str
    """One line, already redacted."""

    @property
    def ok(self) -> bool:
        """A warning or a skip is not a failure."""
        return self.status != "fail"

    def as_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "ok": self.ok,
            "status": self.status,
            "durationMs": self.duration_ms,
            "detail": self.detail,
        }


AuthSource = Literal["--token", "GATEWAY_SMOKE_TOKEN", "JWT_SECRET", "--header", "guest"]


@dataclass(frozen=True, slots=True)
class Auth:
    """How the run authenticates. `token` is never printed (`repr` leaves it out too)."""

    source: AuthSource = "guest"
    token: str | None = field(default=None, repr=False)
    about: str = "as a guest (no token)"
    """For the output: where the credential comes from, never the credential."""

    @property
    def guest(self) -> bool:
        return self.source == "guest"


@dataclass(frozen=True, slots=True)
class SmokeOptions:
    url: URL
    """The deployment's base address, without `/trpc` and without a trailing slash."""
    timeout: float = DEFAULT_TIMEOUT
    """Seconds per HTTP request."""
    currency: str = DEFAULT_CURRENCY
    amount: int | None = None
    """Minor units; None: DEFAULT_AMOUNT, or the currency's minimum when that is higher."""
    skip_payment: bool = False
    allow_live: bool = False
    headers: tuple[tuple[str, str], ...] = ()
    """Sent with every request (e.g. a protected deployment's authorization); their values are never printed."""
    auth: Auth = field(default_factory=Auth)
    """The bearer token sent with every request, if any (see `resolve_auth`); none: a guest."""

    @property
    def payment_amount(self) -> int:
        if self.amount is not None:
            return self.amount
        return max(DEFAULT_AMOUNT, MINIMUM_CHARGE.get(self.currency, 0))


# -- redaction ---------------------------------------------------------------------------------------------------

_CLIENT_SECRET: Final = re.compile(r"\b(pi|seti|cs)_[A-Za-z0-9_]+?_secret_[A-Za-z0-9]+")
_SECRET_KEY: Final = re.compile(r"\b((?:sk|rk)_(?:live|test)_)(?!…)[A-Za-z0-9_]*?([A-Za-z0-9]{4})?\b")
"""Not one already redacted (`sk_live_…abcd`): redacting twice changes nothing."""
_WEBHOOK_SECRET: Final = re.compile(r"\bwhsec_[A-Za-z0-9_+/=]+")
_EPHEMERAL_KEY: Final = re.compile(r"\b(ek_(?:live|test)_)[A-Za-z0-9_]+")
_JWT: Final = re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*)?")
"""A JWT, or what is left of one cut short (its header and a dot)."""
_BEARER: Final = re.compile(r"(?i)\b(bearer)\s+(?!tokens?\b)[^\s,;\"']+")
"""`Bearer <credential>`, not the words "bearer token" of a message (the gateway's UNAUTHORIZED says them)."""
_BASIC: Final = re.compile(r"\b(Basic)\s+[A-Za-z0-9+/=]{8,}")
MIN_HIDDEN_VALUE: Final = 6
"""`--header` values this long or longer are hidden wherever they would appear in the output."""


def redact(text: str, hidden: Sequence[str] = ()) -> str:
    """`text` with nothing secret left whole: client secrets as `pi_…_secret_…`, secret and restricted keys as
    `sk_live_…abcd`, webhook secrets, ephemeral keys, JWTs and bearer tokens elided, and each of `hidden` (the
    `--header` values) replaced by `…`."""
    for value in sorted(hidden, key=len, reverse=True):
        if len(value) >= MIN_HIDDEN_VALUE:
            text = text.replace(value, "…")
    text = _CLIENT_SECRET.sub(r"\1_…_secret_…", text)
    text = _SECRET_KEY.sub(lambda match: f"{match[1]}…{match[2] or ''}", text)
    text = _WEBHOOK_SECRET.sub("whsec_…", text)
    text = _EPHEMERAL_KEY.sub(r"\1…", text)
    text = _JWT.sub("eyJ…", text)
    text = _BASIC.sub(r"\1 …", text)
    return _BEARER.sub(r"\1 …", text)


def _printable(text: str) -> str:
    """One line, no terminal control sequences (a server's text is shown, never obeyed)."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


_HIDDEN: Final = contextvars.ContextVar[tuple[str, ...]]("smoke_hidden", default=())
"""The run's values never to print (its token, the `--header` values), for `_shorten`."""


def _shorten(text: str, limit: int = MESSAGE_CHARS) -> str:
    # Redacted before it is cut: a secret cut in half is no longer recognised, and half a token is still a leak.
    text = redact(text, _HIDDEN.get())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _mask_key(key: str) -> str:
    """`pk_test_…ator`: enough to tell keys apart, not the key."""
    prefix = next((p for p in ("pk_live_", "pk_test_") if key.startswith(p)), key[:3])
    return f"{prefix}…{key[-4:]}" if len(key) > len(prefix) + 4 else f"{prefix}…"


# -- the command line --------------------------------------------------------------------------------------------


def parse_base_url(text: str) -> URL:
    """The deployment's base address: http(s), a host, no credentials, query or fragment, not ending in `/trpc`.
    Returned without a trailing slash."""
    example = "e.g. --url https://payments.example.com"
    try:
        url = URL(text.strip())
    except (ValueError, TypeError):
        raise UsageError(f"--url: not a URL: {text!r} ({example})") from None
    if url.user is not None or url.password is not None:
        raise UsageError("--url must not carry credentials: pass them with --header 'Authorization: …'")
    if url.scheme not in ("http", "https") or not url.host:
        raise UsageError(f"--url must be an http:// or https:// address with a host, {example}; got {text!r}")
    if url.query_string or url.fragment:
        raise UsageError(f"--url is the gateway's base address, without ?query or #fragment, {example}")
    path = url.path.rstrip("/")
    base = url.with_path(path or "/", encoded=False)
    for suffix in (TRPC_PATH, METRICS_PATH, HEALTH_PATH):
        if path.endswith(suffix):
            suggestion = str(base.with_path(path.removesuffix(suffix) or "/")).rstrip("/")
            raise UsageError(f"--url is the base address, without {suffix}: --url {suggestion}")
    return URL(str(base).rstrip("/"))


def parse_header(text: str) -> tuple[str, str]:
    """`NAME:VALUE` (spaces around the value are dropped)."""
    name, colon, value = text.partition(":")
    name, value = name.strip(), value.strip()
    # The text given is not repeated: it may be a secret given the wrong way.
    if not colon:
        raise UsageError(
            "--header must be NAME:VALUE, e.g. --header 'Authorization: Bearer …' (no ':' found)"
        )
    if not _HEADER_NAME.match(name):
        raise UsageError("--header must be NAME:VALUE: the name is not a valid HTTP header name")
    if any(char in value for char in "\r\n\0"):
        raise UsageError(f"--header {name}: the value must be one line")
    return name, value


def _development_jwt_secret(path: Path) -> str | None:
    """The offline demo's generated JWT_SECRET (`data/dev-secrets.json`, written by `gateway serve`), if there is
    one; read only, never created: a new random secret could not match the running gateway's."""
    try:
        stored = msgspec.json.decode(path.read_bytes())
    except (OSError, msgspec.DecodeError):
        return None
    secret = stored.get("jwt_secret") if isinstance(stored, dict) else None
    return secret if isinstance(secret, str) and secret else None


def resolve_auth(
    token: str | None,
    headers: Sequence[tuple[str, str]] = (),
    environ: Mapping[str, str] | None = None,
    dotenv: Path | None = Path(".env"),
    dev_secrets: Path | None = DEV_SECRETS_FILE,
) -> Auth:
    """The run's credential: `token` (`--token`), else `GATEWAY_SMOKE_TOKEN`, else a 5-minute token for user
    `smoke-test` signed with the local JWT_SECRET (the environment, then `.env`, as the gateway reads them; outside
    production, the offline demo's generated one in `data/dev-secrets.json`), else none: a guest. An
    `Authorization` given with `--header` is used as it is, and nothing is minted."""
    env = os.environ if environ is None else environ
    authorization_header = any(name.lower() == "authorization" for name, _ in headers)
    source: AuthSource | None = None
    if token is not None:
        source = "--token"
    elif env.get(TOKEN_ENV, "").strip():
        token, source = env[TOKEN_ENV], TOKEN_ENV
    if token is not None and source is not None:
        if authorization_header:
            raise UsageError(f"{source} and --header 'Authorization: …' both give a credential: give one")
        token = token.strip()
        if token[:7].lower() == "bearer ":  # the header's value pasted whole
            token = token[7:].strip()
        # The value is not repeated: it is a secret.
        if not token or not token.isprintable() or any(char.isspace() for char in token):
            raise UsageError(f"{source}: not a bearer token (one word, without spaces or control characters)")
        return Auth(source, token, f"with the bearer token of {source}")
    if authorization_header:
        return Auth("--header", None, "with the Authorization given with --header")
    # Only JWT_SECRET (and the token claims) are read: the deployment under test has its own configuration, and
    # this machine's may lack keys or be a production one (a CI job), which must not stop the run.
    configured = inspect_settings(environ, dotenv)
    problem = configured.problems.get("JWT_SECRET")
    origin = configured.sources.get("JWT_SECRET", "environment")
    where = "the environment" if origin == "environment" else origin
    if problem is not None:
        raise UsageError(f"JWT_SECRET (from {where}): {problem}; fix it, or pass --token TOKEN")
    settings = configured.settings
    if not settings.jwt_secret and not settings.is_production and dev_secrets is not None:
        generated = _development_jwt_secret(dev_secrets)
        if generated is not None:
            settings = msgspec.structs.replace(settings, jwt_secret=generated)
            where = str(dev_secrets)
    if not settings.jwt_secret:
        return Auth(
            "guest",
            None,
            "as a guest (no --token, GATEWAY_SMOKE_TOKEN or JWT_SECRET): the gateway needs guest checkout on",
        )
    minted = issue_token(settings, SMOKE_USER, ttl_seconds=MINTED_TOKEN_SECONDS)
    return Auth(
        "JWT_SECRET",
        minted,
        f"as user {SMOKE_USER} (a {MINTED_TOKEN_SECONDS // 60}-minute token signed with JWT_SECRET from {where})",
    )


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value <= 600:
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most 600 seconds: {text}")
    return value


def _currency(text: str) -> str:
    currency = normalise_currency(text)
    if currency is None:
        raise argparse.ArgumentTypeError(f"not a currency Stripe charges in: {text!r} (e.g. eur, usd, gbp)")
    return currency


def _amount(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of minor units: {text!r}") from None


def add_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `gateway smoke`."""
    parser = commands.add_parser(
        "smoke",
        help="smoke-test a running deployment over HTTP: health, metrics, config, a test payment, bad input",
        description=(
            "The seed's `pnpm test:smoke` against a running gateway: GET /metrics/payments/health and "
            "/metrics/payments, the tRPC query stripe.getConfig, a real test-mode PaymentIntent (created, read "
            "back and canceled; refused on a live-mode gateway unless --allow-live), and probes that bad input "
            "is BAD_REQUEST and an unknown procedure NOT_FOUND. Each step is printed as it ends, with its "
            "duration. The payment procedures need a signed-in caller: the run sends --token (or "
            f"${TOKEN_ENV}); without one, a {MINTED_TOKEN_SECONDS // 60}-minute token for user {SMOKE_USER} signed "
            "with the local JWT_SECRET (environment, then .env, or the offline demo's data/dev-secrets.json: it must "
            "be the gateway's); without that, it runs as "
            "a guest (the gateway needs GATEWAY_GUEST_CHECKOUT=true). The token is never printed. Exit 0: all "
            "passed (warnings allowed); 1: a step failed; 2: usage error; 130: interrupted (after canceling the "
            "PaymentIntent it made)."
        ),
    )
    parser.add_argument(
        "--url",
        required=True,
        help="the deployment's base address, without /trpc (https://payments.example.com)",
    )
    parser.add_argument(
        "--timeout",
        type=_seconds,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"per request (default {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument(
        "--currency",
        type=_currency,
        default=DEFAULT_CURRENCY,
        help=f"of the test payment (default {DEFAULT_CURRENCY})",
    )
    parser.add_argument(
        "--amount",
        type=_amount,
        metavar="N",
        help=f"of the test payment, in minor units (default {DEFAULT_AMOUNT}, or the currency's minimum)",
    )
    parser.add_argument(
        "--skip-payment", action="store_true", help="do not create (and cancel) a test PaymentIntent"
    )
    parser.add_argument(
        "--allow-live",
        action="store_true",
        help="create (and cancel) the PaymentIntent even on a live-mode gateway (nothing is charged)",
    )
    parser.add_argument(
        "--json", action="store_true", help="one JSON document at the end instead of the lines"
    )
    parser.add_argument(
        "--token",
        metavar="TOKEN",
        help=(
            f"the bearer token (JWT) to call the gateway with (default: ${TOKEN_ENV}; else one minted with the "
            "local JWT_SECRET; else none, as a guest); never printed"
        ),
    )
    parser.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="NAME:VALUE",
        help=(
            "send this header with every request (repeatable), e.g. a proxy's 'X-Api-Key: …' (a bearer token: "
            "--token); never printed"
        ),
    )
    # The output is the command's own; log lines (there should be none) go to stderr.
    # It talks to a deployment over HTTP: this machine's configuration (which may lack keys) is not its business,
    # except for JWT_SECRET, read by `resolve_auth` without the checks that would stop a keyless CI job.
    parser.set_defaults(run=run, logs_to_stderr=True, needs_settings=False)


def run(args: argparse.Namespace, settings: Settings | None = None) -> int:
    """`gateway smoke`: the settings are not used (the deployment under test has its own); only JWT_SECRET is read,
    by `resolve_auth`, to mint a token when none is given."""
    del settings
    try:
        url = parse_base_url(args.url)
        headers = tuple(parse_header(text) for text in args.header)
        options = SmokeOptions(
            url=url,
            timeout=args.timeout,
            currency=args.currency,
            amount=args.amount,
            skip_payment=args.skip_payment,
            allow_live=args.allow_live,
            headers=headers,
            auth=resolve_auth(getattr(args, "token", None), headers),
        )
        if not options.skip_payment:
            problem = amount_problem(options.payment_amount, options.currency)
            if problem is not None:
                raise UsageError(f"--amount: {problem}")
    except UsageError as error:
        print(f"gateway smoke: {error}", file=sys.stderr)
        return EXIT_USAGE
    printer = _Printer(sys.stdout, as_json=args.json)
    printer.start(options)
    started = time.perf_counter()
    try:
        steps = asyncio.run(run_smoke(options, printer.step))
    except KeyboardInterrupt:
        print("gateway smoke: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    printer.finish(options, steps, _ms(started))
    return EXIT_OK if all(step.ok for step in steps) else EXIT_FAILED


# -- output ------------------------------------------------------------------------------------------------------


def format_step(step: Step, marks: dict[Status, str] = MARKS) -> str:
    return f"{marks[step.status]:<2} {step.name:<18} {step.duration_ms:>6} ms  {step.detail}"


def format_summary(steps: Sequence[Step], duration_ms: int) -> str:
    failed = [step.name for step in steps if step.status == "fail"]
    warnings = sum(step.status == "warn" for step in steps)
    skipped = sum(step.status == "skip" for step in steps)
    extras = [f"{n} {word}" for n, word in ((warnings, "warning"), (skipped, "skipped")) if n]
    if warnings > 1:
        extras[0] += "s"
    tail = f" ({', '.join(extras)})" if extras else ""
    if failed:
        return f"FAILED: {len(failed)} of {len(steps)} steps ({', '.join(failed)}) in {duration_ms} ms{tail}"
    return f"PASSED: {len(steps)} steps in {duration_ms} ms{tail}"


def format_json(options: SmokeOptions, steps: Sequence[Step], duration_ms: int) -> str:
    document = {
        "url": str(options.url),
        "auth": options.auth.source,
        "ok": all(step.ok for step in steps),
        "durationMs": duration_ms,
        "steps": [step.as_json() for step in steps],
    }
    return msgspec.json.encode(document).decode() + "\n"


class _Printer:
    """Lines as the steps end (or one JSON document at the end), on a stream that may be a closed pipe."""

    def __init__(self, stream: TextIO, *, as_json: bool) -> None:
        self._stream: TextIO | None = stream
        self._as_json = as_json
        self._marks = MARKS
        encoding = getattr(stream, "encoding", None) or "utf-8"
        try:
            "".join([*MARKS.values(), "…"]).encode(encoding)
        except (UnicodeEncodeError, LookupError):
            self._marks = ASCII_MARKS
            if isinstance(stream, io.TextIOWrapper):
                stream.reconfigure(errors="replace")

    def _write(self, text: str) -> None:
        if self._stream is None:
            return
        try:
            self._stream.write(text)
            self._stream.flush()
        except BrokenPipeError:
            # `gateway smoke … | head`: the reader is gone; the steps still run to the end (the cancel matters),
            # and the interpreter's last flush must not fail either.
            with contextlib.suppress(OSError, ValueError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), self._stream.fileno())
            self._stream = None

    def start(self, options: SmokeOptions) -> None:
        if not self._as_json:
            self._write(
                f"gateway smoke {options.url} (timeout {options.timeout:g} s per request), {options.auth.about}\n"
            )

    def step(self, step: Step) -> None:
        if not self._as_json:
            self._write(format_step(step, self._marks) + "\n")

    def finish(self, options: SmokeOptions, steps: Sequence[Step], duration_ms: int) -> None:
        if self._as_json:
            self._write(format_json(options, steps, duration_ms))
        else:
            self._write(format_summary(steps, duration_ms) + "\n")


def _ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


# -- HTTP --------------------------------------------------------------------------------------------------------


class _Failed(Exception):
    """A step's failure, with what to tell the operator."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class _NoAnswer(_Failed):
    """The request got no HTTP answer (refused, reset, timed out, TLS): its effect, if any, is unknown."""


class _Refused(_Failed):
    """A tRPC error answered with a 4xx status: the call changed nothing."""


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    reason: str
    body: object
    """The decoded JSON, or None when the body is not JSON."""
    text: str
    """The start of the body, for messages."""
    request_id: str | None

    def where(self) -> str:
        """`HTTP 400, request pay_…`: what to grep the gateway's logs for."""
        return f"HTTP {self.status}" + (f", request {self.request_id}" if self.request_id else "")


class _Http:
    def __init__(self, session: aiohttp.ClientSession, options: SmokeOptions) -> None:
        self._session = session
        self._options = options
        self._base = str(options.url)

    def url(self, path: str) -> URL:
        return URL(self._base + path)

    async def request(
        self, method: str, path: str, *, query: str | None = None, body: bytes | None = None
    ) -> _Answer:
        url = self.url(path)
        if query is not None:
            url = url.with_query(input=query)
        headers = {"content-type": "application/json"} if body is not None else None
        try:
            async with self._session.request(method, url, data=body, headers=headers) as response:
                raw = await response.read()
                return _answer(response, raw)
        except aiohttp.ClientConnectorCertificateError as error:
            raise _NoAnswer(f"TLS certificate rejected for {url.host}: {error.certificate_error}") from None
        except aiohttp.ClientConnectorDNSError:
            raise _NoAnswer(f"cannot resolve {url.host}: check --url") from None
        except aiohttp.ClientConnectorError as error:
            if isinstance(error.os_error, ConnectionRefusedError):
                reason = "connection refused (nothing listens there)"
            else:
                reason = error.os_error.strerror or str(error.os_error) or type(error.os_error).__name__
            raise _NoAnswer(
                f"cannot connect to {url.host}:{url.port}: {reason}; is the gateway running at {self._base}?"
            ) from None
        except aiohttp.ServerDisconnectedError:
            raise _NoAnswer(f"{method} {path}: the server closed the connection without answering") from None
        except TimeoutError:
            raise _NoAnswer(
                f"{method} {path}: no answer within {self._options.timeout:g} s (--timeout)"
            ) from None
        except aiohttp.ClientError as error:
            raise _NoAnswer(f"{method} {path}: {type(error).__name__}: {error}") from None


def _answer(response: aiohttp.ClientResponse, raw: bytes) -> _Answer:
    try:
        body: object = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        body = None
    text = raw[:ANSWER_TEXT_CHARS].decode("utf-8", "replace")
    return _Answer(response.status, response.reason or "", body, text, response.headers.get("x-request-id"))


def _unexpected(answer: _Answer, wanted: str) -> str:
    """Why an answer is not what the step wanted, with a hint of where to look."""
    hint = ""
    if answer.status in (401, 403):
        hint = (
            "; a protected deployment? pass a bearer token with --token, or other credentials with "
            "--header 'NAME: …'"
        )
    elif answer.status == 404:
        hint = "; is --url the gateway's base address (without /trpc)?"
    elif answer.status >= 500:
        hint = "; look at the gateway's logs (payment_request_error) and its health"
    snippet = _shorten(answer.text, SNIPPET_CHARS)
    shape = "not JSON: " + repr(snippet) if answer.body is None else "JSON, but not " + wanted
    return f"{answer.where()} {answer.reason}: expected {wanted}, got {shape}{hint}"


def _object(value: object) -> dict[str, object] | None:
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        return value
    return None


def _describe_error(error: dict[str, object], answer: _Answer) -> str:
    """`BAD_GATEWAY (HTTP 502, request pay_…): Stripe could not be reached`."""
    data = _object(error.get("data")) or {}
    code = data.get("code") if isinstance(data.get("code"), str) else error.get("code")
    message = error.get("message")
    text = _shorten(str(message).splitlines()[0] if isinstance(message, str) and message else "(no message)")
    return f"{code} ({answer.where()}): {text}"


# -- the smoke test ----------------------------------------------------------------------------------------------


@dataclass
class _Payment:
    order_id: str
    amount: int
    currency: str
    intent_id: str | None = None
    maybe_open: bool = False
    """A create was sent: until a cancel succeeds, an intent may be open at Stripe."""
    client_secret: str | None = field(default=None, repr=False)
    """What the create answered: a guest reads the order back and cancels it with it. Never printed."""


@dataclass
class _Smoke:
    http: _Http
    options: SmokeOptions
    emit: Callable[[Step], None]
    steps: list[Step] = field(default_factory=list)
    test_mode: bool | None = None
    """From stripe.getConfig; None: not known (the config step failed)."""
    health_mode: str | None = None
    """`stripeMode` of the health report, when it had one."""
    maintenance: str | None = None
    """The maintenance message when the health report says maintenance is on (payments are refused)."""
    superjson: bool = False
    """The deployment answers in superjson (`GATEWAY_TRPC_TRANSFORMER=superjson`): inputs are sent wrapped."""

    # -- plumbing --

    def _clean(self, detail: str) -> str:
        return redact(_printable(detail), _hidden_values(self.options))

    def _explain(self, error: dict[str, object], answer: _Answer) -> str:
        """`_describe_error`, and for UNAUTHORIZED what to do about the credential."""
        described = _describe_error(error, answer)
        data = _object(error.get("data")) or {}
        if data.get("code") == "UNAUTHORIZED" or answer.status == 401:
            described += f"; {self._auth_hint()}"
        return described

    def _auth_hint(self) -> str:
        auth = self.options.auth
        if auth.source == "guest":
            return (
                "the gateway wants a bearer token (its guest checkout is off): pass --token TOKEN (or "
                f"{TOKEN_ENV}), or set JWT_SECRET (the gateway's) here so that one is minted"
            )
        if auth.source == "JWT_SECRET":
            return (
                "the token minted with the local JWT_SECRET was refused: is it the gateway's JWT_SECRET (and "
                "GATEWAY_JWT_ISSUER / GATEWAY_JWT_AUDIENCE)? Or pass --token TOKEN"
            )
        if auth.source == "--header":
            return "the Authorization given with --header was refused: pass a valid one, or --token TOKEN"
        return (
            f"the token of {auth.source} was refused (expired? signed with another JWT_SECRET?): pass a fresh "
            "one with --token, or leave it out to mint one with the gateway's JWT_SECRET"
        )

    def _owned(self, value: dict[str, object], client_secret: str | None) -> dict[str, object]:
        """`value` with the order's client secret when running as a guest: a guest's only proof of ownership."""
        if self.options.auth.guest and client_secret:
            return {**value, "clientSecret": client_secret}
        return value

    def _record(self, name: str, status: Status, detail: str, duration_ms: int = 0) -> Step:
        step = Step(name, status, duration_ms, self._clean(detail))
        self.steps.append(step)
        self.emit(step)
        return step

    async def _step(self, name: str, check: Callable[[], Awaitable[tuple[Status, str]]]) -> Step:
        started = time.perf_counter()
        try:
            status, detail = await check()
        except _Failed as failure:
            status, detail = "fail", failure.detail
        except Exception as error:  # a bug here must not stop the other steps (nor the cancel)
            status, detail = "fail", f"unexpected {type(error).__name__} in the smoke test itself: {error}"
        return self._record(name, status, detail, _ms(started))

    def _encode_input(self, value: object) -> bytes:
        return msgspec.json.encode({"json": value} if self.superjson else value)

    async def _call(self, procedure: str, value: object = None, *, mutation: bool = False) -> _Answer:
        """A query (GET, `?input=`) or a mutation (POST, JSON body)."""
        path = f"{TRPC_PATH}/{procedure}"
        if mutation:
            return await self.http.request("POST", path, body=self._encode_input(value))
        query = None if value is None else self._encode_input(value).decode()
        return await self.http.request("GET", path, query=query)

    async def _trpc(self, procedure: str, value: object = None, *, mutation: bool = False) -> object:
        """The call's `result.data`; an error envelope, or anything else, raises _Failed."""
        answer, error = await self._trpc_error(procedure, value, mutation=mutation)
        if error is not None:
            failure = _Refused if 400 <= answer.status < 500 else _Failed
            raise failure(f"{procedure}: {self._explain(error, answer)}")
        result = _object((_object(answer.body) or {}).get("result"))
        if answer.status != 200 or result is None or "data" not in result:
            raise _Failed(f"{procedure}: {_unexpected(answer, 'a tRPC result envelope')}")
        return self._unwrap_data(result["data"])

    async def _trpc_error(
        self, procedure: str, value: object = None, *, mutation: bool = False
    ) -> tuple[_Answer, dict[str, object] | None]:
        """(the answer, its `error`: None when it is not an error envelope)."""
        answer = await self._call(procedure, value, mutation=mutation)
        return answer, self._unwrap_error(_object(answer.body))

    def _unwrap_data(self, data: object) -> object:
        """superjson's `{"json": …, "meta": …}` unwrapped (and remembered: later inputs are sent wrapped)."""
        wrapped = _object(data)
        if wrapped is not None and "json" in wrapped and set(wrapped) <= {"json", "meta"}:
            self.superjson = True
            return wrapped["json"]
        return data

    @staticmethod
    def _unwrap_error(envelope: dict[str, object] | None) -> dict[str, object] | None:
        error = _object(envelope.get("error")) if envelope is not None else None
        if error is not None and "json" in error and set(error) <= {"json", "meta"}:
            error = _object(error.get("json"))
        return error

    # -- the steps --

    async def run(self) -> list[Step]:
        await self._step("health", self._health)
        await self._step("metrics", self._metrics)
        await self._step("config", self._config)
        await self._payment()
        await self._step("bad-input", self._bad_input)
        await self._step("unknown-procedure", self._unknown_procedure)
        return self.steps

    async def _health(self) -> tuple[Status, str]:
        answer = await self.http.request("GET", HEALTH_PATH)
        body = _object(answer.body)
        verdict = body.get("status") if body is not None else None
        if body is None or not isinstance(verdict, str):
            raise _Failed(_unexpected(answer, "a health report"))
        checks = _object(body.get("checks")) or {}
        mode = body.get("stripeMode")
        self.health_mode = mode if isinstance(mode, str) else None
        maintenance = _object(checks.get("maintenance")) or {}
        if maintenance.get("enabled") is True:
            self.maintenance = str(maintenance.get("message") or "no message")
        about = f"{self.health_mode or '?'} mode, version {body.get('version', '?')}"
        if answer.status == 503 or verdict == "unhealthy":
            failing = _checks(checks, "fail") or "no failing check named"
            raise _Failed(
                f"{answer.where()}, {verdict} ({about}): {failing}; look at the gateway's logs and {HEALTH_PATH}"
            )
        if answer.status != 200:
            raise _Failed(_unexpected(answer, "200 with a health report"))
        if verdict == "degraded":
            return "warn", f"degraded ({about}): {_checks(checks, 'warn') or 'no warning check named'}"
        if verdict == "healthy":
            return "pass", f"healthy ({about}), {len(checks)} checks pass"
        raise _Failed(f"{answer.where()}: unknown health status {verdict!r} (healthy, degraded or unhealthy)")

    async def _metrics(self) -> tuple[Status, str]:
        answer = await self.http.request("GET", METRICS_PATH)
        body = _object(answer.body)
        if answer.status != 200 or body is None:
            raise _Failed(_unexpected(answer, "200 with the payment summary"))
        problems = _summary_problems(body)
        if problems:
            raise _Failed(f"{answer.where()}: not the seed's summary: {'; '.join(problems)}")
        return "pass", (
            f"the seed's 6 fields and formats: {body['totalPayments']} payments, {body['successRate']} success, "
            f"{body['averageResponseTime']} mean, last updated {body['lastUpdated']}"
        )

    async def _config(self) -> tuple[Status, str]:
        data = await self._trpc("stripe.getConfig")
        config = _object(data)
        if config is None:
            raise _Failed(f"stripe.getConfig: the result is not an object: {_shorten(repr(data))}")
        key, test_mode = config.get("publishableKey"), config.get("testMode")
        if not isinstance(key, str) or not key.startswith("pk_"):
            raise _Failed(
                f"stripe.getConfig: publishableKey missing or not a pk_… key: {_shorten(repr(key), 40)}"
            )
        if not isinstance(test_mode, bool):
            raise _Failed(f"stripe.getConfig: testMode is not a boolean: {_shorten(repr(test_mode), 40)}")
        shown = _mask_key(key)
        if key.startswith("pk_live_") == test_mode:
            raise _Failed(
                f"stripe.getConfig: testMode {str(test_mode).lower()} with the publishable key {shown}: the "
                "gateway's keys are not of one mode (STRIPE_SECRET_KEY, STRIPE_PUBLISHABLE_KEY)"
            )
        self.test_mode = test_mode
        merchant = config.get("merchantDisplayName")
        country = config.get("merchantCountryCode")
        return "pass", (
            f"publishableKey {shown}, testMode {str(test_mode).lower()}, merchant {merchant!r} ({country})"
        )

    # -- the payment --

    def _live_reason(self) -> str | None:
        """Why the gateway is (or may be) in live mode; None when it is known to be in test mode."""
        if self.test_mode is None:
            return "the gateway's mode is unknown (the config step failed)"
        if not self.test_mode:
            return "the gateway is in LIVE mode (stripe.getConfig testMode false)"
        if self.health_mode == "live":
            return "the health report says stripeMode live (while stripe.getConfig says testMode true)"
        return None

    async def _payment(self) -> None:
        if self.options.skip_payment:
            self._record("payment", "skip", "skipped (--skip-payment): no PaymentIntent created")
            return
        if self.maintenance is not None:
            # Payments are refused on purpose (`gateway maintenance on`): a create would only be refused too.
            self._record(
                "payment",
                "warn",
                f"not attempted: maintenance is on ({self.maintenance!r}); `gateway maintenance off` to resume",
            )
            return
        live = self._live_reason()
        if live is not None and not self.options.allow_live:
            if self.test_mode is None:  # already a failure: this is its consequence, not another one
                self._record("payment", "skip", f"not attempted: {live}; nothing was created")
            else:
                self._record(
                    "payment",
                    "fail",
                    f"REFUSED: {live}; nothing was created. A real PaymentIntent is made only on a test-mode "
                    "gateway: use --allow-live to create (and cancel) one anyway, or --skip-payment",
                )
            return
        now = datetime.datetime.now(datetime.UTC)
        payment = _Payment(
            order_id=f"smoke-{now:%Y%m%dT%H%M%S}Z-{secrets.token_hex(4)}",
            amount=self.options.payment_amount,
            currency=self.options.currency,
        )
        if live is not None:
            self._record(
                "payment",
                "warn",
                f"{live}, and --allow-live: creating a REAL PaymentIntent of {payment.amount} {payment.currency} "
                f"(order {payment.order_id}), never confirmed (nothing is charged), then canceling it",
            )
        try:
            create = await self._step("payment.create", lambda: self._create(payment))
            if create.ok:
                await self._step("payment.status", lambda: self._status(payment))
            else:
                self._record("payment.status", "skip", "skipped: the create failed")
            if payment.maybe_open:
                await self._step("payment.cancel", lambda: self._cancel(payment))
            else:
                self._record("payment.cancel", "skip", "skipped: the create was refused, nothing to cancel")
        except asyncio.CancelledError:  # Ctrl-C: leave nothing open, then stop
            if payment.maybe_open:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(
                        self._step("payment.cancel", lambda: self._cancel(payment)), INTERRUPT_CANCEL_TIMEOUT
                    )
            raise

    async def _create(self, payment: _Payment) -> tuple[Status, str]:
        value = {
            "orderId": payment.order_id,
            "amount": payment.amount,
            "currency": payment.currency,
            "description": "gateway smoke test: created and canceled by `gateway smoke`",
            "metadata": {"smoke_test": "true"},
        }
        payment.maybe_open = True
        try:
            data = await self._trpc("stripe.createPaymentIntent", value, mutation=True)
        except _Refused:
            payment.maybe_open = False  # refused (4xx): nothing was created
            raise
        # No answer, or a 5xx (Stripe timed out, say): the intent may exist, so the cancel is tried.
        intent = _object(data) or {}
        intent_id, secret = intent.get("paymentIntentId"), intent.get("clientSecret")
        if isinstance(intent_id, str) and intent_id.startswith("pi_"):
            payment.intent_id = intent_id
        if isinstance(secret, str) and secret:
            payment.client_secret = secret
        problems = []
        if payment.intent_id is None:
            problems.append(f"paymentIntentId is not a pi_… id: {_shorten(repr(intent_id), 40)}")
        if not isinstance(secret, str) or not secret:
            problems.append("no clientSecret")
        elif payment.intent_id is not None and not secret.startswith(f"{payment.intent_id}_secret_"):
            problems.append("clientSecret is not the intent's (pi_…_secret_…)")
        problems += _mismatches(intent, {"status": "requires_payment_method", "amount": payment.amount})
        if str(intent.get("currency", "")).lower() != payment.currency:
            problems.append(f"currency {intent.get('currency')!r}, expected {payment.currency!r}")
        if problems:
            raise _Failed(f"order {payment.order_id}: {'; '.join(problems)}")
        mode = "" if self._live_reason() is None else "LIVE mode: "
        return ("pass" if not mode else "warn"), (
            f"{mode}{payment.intent_id} for order {payment.order_id}: requires_payment_method, "
            f"{payment.amount} {payment.currency}, clientSecret pi_…_secret_… (redacted)"
        )

    async def _status(self, payment: _Payment) -> tuple[Status, str]:
        data = await self._trpc(
            "stripe.getPaymentStatus", self._owned({"orderId": payment.order_id}, payment.client_secret)
        )
        status = _object(data) or {}
        problems = _mismatches(
            status,
            {
                "orderId": payment.order_id,
                "paymentIntentId": payment.intent_id,
                "status": "requires_payment_method",
                "amount": payment.amount,
            },
        )
        if problems:
            raise _Failed(f"order {payment.order_id}: {'; '.join(problems)}")
        return "pass", (
            f"order {payment.order_id}: requires_payment_method, {payment.amount} {payment.currency}, "
            f"updated {status.get('updatedAt')}"
        )

    async def _cancel(self, payment: _Payment) -> tuple[Status, str]:
        what = f"{payment.intent_id or 'the PaymentIntent'} of order {payment.order_id}"
        by_hand = (
            f"it is left open: cancel it in the Stripe Dashboard, or POST "
            f'{self.http.url(TRPC_PATH + "/stripe.cancelPaymentIntent")} {{"orderId":"{payment.order_id}"}}'
        )
        if self.options.auth.guest:
            by_hand += " as an admin (a guest would need the client secret, which is not printed)"
        value = self._owned({"orderId": payment.order_id}, payment.client_secret)
        try:
            answer, error = await self._trpc_error("stripe.cancelPaymentIntent", value, mutation=True)
        except _NoAnswer as failure:
            raise _Failed(f"could not cancel {what}: {failure.detail}; {by_hand}") from None
        if error is not None:
            data = _object(error.get("data")) or {}
            if payment.intent_id is None and data.get("code") == "NOT_FOUND":
                if self.options.auth.guest and payment.client_secret is None:
                    # The gateway answers NOT_FOUND for a guest order without its secret too: nothing is known.
                    return "warn", (
                        f"order {payment.order_id}: not found, but a guest without the client secret cannot tell a "
                        f"missing order from another's; if the failed create made an intent, {by_hand}"
                    )
                payment.maybe_open = False
                return "pass", f"order {payment.order_id} does not exist: the failed create made nothing"
            raise _Failed(f"could not cancel {what}: {self._explain(error, answer)}; {by_hand}")
        envelope = _object(answer.body) or {}
        result = _object(envelope.get("result")) or {}
        status = _object(self._unwrap_data(result.get("data"))) or {}
        if answer.status != 200 or status.get("status") != "canceled":
            raise _Failed(
                f"could not cancel {what}: {_unexpected(answer, 'status canceled')} "
                f"(status {status.get('status')!r}); {by_hand}"
            )
        payment.maybe_open = False
        return "pass", f"{what}: canceled, nothing left open"

    # -- the probes --

    async def _bad_input(self) -> tuple[Status, str]:
        order_id = f"smoke-probe-{secrets.token_hex(4)}"
        value = {"orderId": order_id, "amount": BAD_AMOUNT, "currency": self.options.currency}
        answer, error = await self._trpc_error("stripe.createPaymentIntent", value, mutation=True)
        if error is None:
            if answer.status == 200:
                result = _object((_object(answer.body) or {}).get("result")) or {}
                accepted = _object(self._unwrap_data(result.get("data"))) or {}
                secret = accepted.get("clientSecret")
                await self._cancel_quietly(order_id, secret if isinstance(secret, str) else None)
                raise _Failed(
                    f"{answer.where()}: amount {BAD_AMOUNT} was ACCEPTED: the gateway does not validate its input "
                    f"(order {order_id}, canceled)"
                )
            raise _Failed(_unexpected(answer, "a tRPC error envelope"))
        data = _object(error.get("data")) or {}
        issues = data.get("issues")
        paths = [
            issue.get("path")
            for issue in (issues if isinstance(issues, list) else [])
            if isinstance(issue, dict)
        ]
        problems = []
        if answer.status != 400 or data.get("code") != "BAD_REQUEST":
            problems.append(f"expected BAD_REQUEST (HTTP 400), got {self._explain(error, answer)}")
        if not isinstance(issues, list):
            problems.append("no data.issues list")
        elif ["amount"] not in paths:
            problems.append(
                f"data.issues does not name the path ['amount'] (paths: {_shorten(repr(paths), 80)})"
            )
        if problems:
            raise _Failed("; ".join(problems))
        return "pass", f"amount {BAD_AMOUNT}: BAD_REQUEST (HTTP 400), data.issues names ['amount']"

    async def _cancel_quietly(self, order_id: str, client_secret: str | None) -> None:
        value = self._owned({"orderId": order_id}, client_secret)
        with contextlib.suppress(Exception):
            await self._trpc_error("stripe.cancelPaymentIntent", value, mutation=True)

    async def _unknown_procedure(self) -> tuple[Status, str]:
        answer, error = await self._trpc_error(UNKNOWN_PROCEDURE)
        if error is None:
            raise _Failed(f"{UNKNOWN_PROCEDURE}: {_unexpected(answer, 'a NOT_FOUND error envelope')}")
        data = _object(error.get("data")) or {}
        if answer.status != 404 or data.get("code") != "NOT_FOUND":
            raise _Failed(
                f"{UNKNOWN_PROCEDURE}: expected NOT_FOUND (HTTP 404), got {_describe_error(error, answer)}"
            )
        return "pass", f"{UNKNOWN_PROCEDURE}: NOT_FOUND (HTTP 404)"


def _checks(checks: dict[str, object], status: str) -> str:
    """`store (database is locked); paymentFailureRate (12.50% > 5.00%)`: the checks in `status`."""
    described = []
    for name, value in checks.items():
        check = _object(value) or {}
        if check.get("status") != status:
            continue
        facts = [str(check[key]) for key in ("error", "problem") if check.get(key)]
        problems = check.get("problems")
        if isinstance(problems, list):
            facts += [str(problem) for problem in problems]
        if "value" in check and "threshold" in check:
            facts.append(f"{check['value']} > {check['threshold']}")
        described.append(f"{name} {status}" + (f" ({_shorten('; '.join(facts), 120)})" if facts else ""))
    return "; ".join(described)


def _summary_problems(body: dict[str, object]) -> list[str]:
    """What in `GET /metrics/payments` is not the seed's: its six fields, each in its format."""
    problems = []
    missing = [name for name in SUMMARY_FIELDS if name not in body]
    extra = [name for name in body if name not in SUMMARY_FIELDS]
    if missing:
        problems.append(f"missing {', '.join(missing)}")
    if extra:
        problems.append(f"unexpected {', '.join(_shorten(name, 40) for name in extra[:5])}")
    counts = {}
    for name in SUMMARY_FIELDS[:3]:
        value = body.get(name)
        if name in body and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            problems.append(f"{name} {_shorten(repr(value), 40)} is not a count")
        elif isinstance(value, int):
            counts[name] = value
    if len(counts) == 3 and counts["successCount"] + counts["failureCount"] != counts["totalPayments"]:
        problems.append("successCount + failureCount != totalPayments")
    formats = (
        ("successRate", _RATE, '"94.67%"'),
        ("averageResponseTime", _SECONDS, '"0.234s"'),
        ("lastUpdated", _ISO_MS_Z, '"2024-01-15T10:30:00.000Z"'),
    )
    for name, pattern, example in formats:
        value = body.get(name)
        if name in body and not (isinstance(value, str) and pattern.match(value)):
            problems.append(f"{name} {_shorten(repr(value), 40)} is not like {example}")
    rate = body.get("successRate")
    total, success = counts.get("totalPayments"), counts.get("successCount")
    rounding = 0.01  # one rounding step apart at most
    consistent = not (isinstance(rate, str) and _RATE.match(rate) and total and success is not None) or (
        abs(float(rate[:-1]) - 100 * success / total) <= rounding
    )
    if not consistent:
        problems.append(f"successRate {rate} is not successCount / totalPayments")
    updated = body.get("lastUpdated")
    if isinstance(updated, str) and _ISO_MS_Z.match(updated):
        try:
            datetime.datetime.fromisoformat(updated)
        except ValueError:
            problems.append(f"lastUpdated {updated!r} is not a date")
    return problems


def _mismatches(found: dict[str, object], expected: dict[str, object]) -> list[str]:
    return [
        f"{name} {_shorten(repr(found.get(name)), 60)}, expected {value!r}"
        for name, value in expected.items()
        if found.get(name) != value
    ]


def _hidden_values(options: SmokeOptions) -> tuple[str, ...]:
    """What the output never shows: the `--header` values (and their last word: `Bearer <this>`), the token."""
    hidden = [value for _, value in options.headers]
    hidden += [value.split()[-1] for _, value in options.headers if value.split()]
    if options.auth.token:
        hidden.append(options.auth.token)
    return tuple(hidden)


async def run_smoke(options: SmokeOptions, emit: Callable[[Step], None] = lambda _: None) -> list[Step]:
    """Every step against `options.url`, each given to `emit` as it ends; the steps, in order."""
    timeout = aiohttp.ClientTimeout(total=options.timeout)
    headers = [("user-agent", USER_AGENT), *options.headers]
    if options.auth.token:
        headers.append(("authorization", f"Bearer {options.auth.token}"))
    hidden = _HIDDEN.set(_hidden_values(options))
    try:
        async with aiohttp.ClientSession(headers=headers, timeout=timeout) as session:
            return await _Smoke(_Http(session, options), options, emit).run()
    finally:
        _HIDDEN.reset(hidden)
