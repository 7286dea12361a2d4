"""Configuration: environment variables, also read from `.env` in the working directory (the environment wins).

Each field's env variable is its name upper-cased, so the seed's names (`STRIPE_SECRET_KEY`, `NODE_ENV`, ...) work
unchanged and the gateway's own settings carry a `GATEWAY_` prefix. Everything has a default that runs a fresh
checkout offline (test mode, local emulator); production mode refuses to start with missing or test-mode keys.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from gateway.http.setting_lists import parse_cors_origins, parse_header_names, parse_trusted_proxies
from gateway.webhooks.signature import parse_webhook_secrets

__all__ = [
    "MIN_APP_SECRET_LENGTH",
    "SETTING_DOCS",
    "ConfigurationError",
    "ConfiguredValues",
    "Settings",
    "app_secret_problems",
    "http_list_problems",
    "inspect_settings",
    "load_settings",
    "qr_secrets",
    "read_dotenv",
]

TransformerMode = Literal["auto", "json", "superjson"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
LIVE_SECRET_KEY_PREFIXES = ("sk_live_", "rk_live_")


def _doc(text: str) -> msgspec.Meta:
    return msgspec.Meta(description=text)


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Every setting the server and the commands read. Field name upper-cased = environment variable."""

    node_env: Annotated[str, _doc("`production` requires live keys and hides stack traces")] = "development"
    stripe_secret_key: Annotated[
        str,
        _doc("Stripe secret key, `sk_live_…` or `sk_test_…`; empty (not in production): the local emulator"),
    ] = ""
    stripe_publishable_key: Annotated[str, _doc("Stripe publishable key, `pk_live_…` or `pk_test_…`")] = ""
    stripe_webhook_secret: Annotated[
        str,
        _doc(
            "Webhook signing secret `whsec_…`; several, comma-separated, while rolling it (any may sign);"
            " empty (not in production): the emulator's"
        ),
    ] = ""
    stripe_api_version: Annotated[
        str,
        msgspec.Meta(
            pattern=r"^\d{4}-\d{2}-\d{2}(\.[a-z]+)?$", description="Stripe API version pinned on every call"
        ),
    ] = "2024-06-20"
    stripe_api_base: Annotated[
        str, _doc("Stripe API address; empty: Stripe itself (set by the gateway when it runs the emulator)")
    ] = ""
    stripe_timeout: Annotated[
        float, msgspec.Meta(gt=0, le=80, description="Seconds a Stripe API call may take, retries apart")
    ] = 20.0
    stripe_max_network_retries: Annotated[
        int, msgspec.Meta(ge=0, le=5, description="Retries of a Stripe call on network errors, 409 and 5xx")
    ] = 2
    jwt_secret: Annotated[
        str,
        _doc(
            "HMAC-SHA256 key of the app's bearer tokens (`Authorization: Bearer <JWT>`), 32+ characters; empty (not"
            " in production): no token is accepted"
        ),
    ] = ""
    qr_secret: Annotated[
        str,
        _doc(
            "HMAC key(s) of the payment QR codes, 32+ characters each; several, comma-separated, while rolling it"
            " (the first signs, any verifies); empty (not in production): no QR codes"
        ),
    ] = ""
    database_url: Annotated[
        str,
        _doc(
            "Where orders, refunds and events are kept: `sqlite:///relative/path`, `sqlite:////abs/path` or"
            " `postgresql://user:password@host:5432/database` (shared by several gateway processes)"
        ),
    ] = "sqlite:///data/gateway.sqlite3"
    gateway_jwt_issuer: Annotated[str, _doc("Required `iss` of bearer tokens; empty: not checked")] = ""
    gateway_jwt_audience: Annotated[str, _doc("Required `aud` of bearer tokens; empty: not checked")] = ""
    gateway_jwt_leeway: Annotated[
        float,
        msgspec.Meta(ge=0, le=300, description="Seconds of clock skew allowed on `exp`, `nbf` and `iat`"),
    ] = 30.0
    gateway_guest_checkout: Annotated[
        bool,
        _doc(
            "Let callers without a token pay (guest checkout); a guest's order is then reached with its"
            " `clientSecret`"
        ),
    ] = False
    gateway_qr_single_use: Annotated[
        bool, _doc("A payment QR code verifies once; later scans answer `already_used`")
    ] = False
    gateway_rate_limit_user: Annotated[
        int, msgspec.Meta(ge=0, description="Mutations per minute per signed-in user (0: no limit)")
    ] = 30
    gateway_rate_limit_client: Annotated[
        int, msgspec.Meta(ge=0, description="Mutations per minute per client address (0: no limit)")
    ] = 60
    gateway_max_concurrent_requests: Annotated[
        int,
        msgspec.Meta(
            ge=1,
            description="Requests handled at once per process (metrics routes apart); more are 503 at once",
        ),
    ] = 512
    gateway_header_timeout: Annotated[
        float,
        msgspec.Meta(
            gt=0,
            description="Seconds a client has to send a request's line and headers; then 408, connection closed",
        ),
    ] = 10.0
    gateway_body_timeout: Annotated[
        float, msgspec.Meta(gt=0, description="Seconds a client has to send a request's body")
    ] = 15.0
    gateway_handler_timeout: Annotated[
        float, msgspec.Meta(gt=0, description="Seconds a request may take to be answered; then TIMEOUT (408)")
    ] = 90.0
    gateway_keepalive_timeout: Annotated[
        float, msgspec.Meta(gt=0, description="Seconds an idle keep-alive connection is kept open")
    ] = 15.0
    gateway_cors_origins: Annotated[
        str,
        _doc(
            "Web origins allowed to call /trpc and /rpc from a browser, comma-separated"
            " (`https://shop.example.com`); empty: CORS off"
        ),
    ] = ""
    gateway_cors_allow_credentials: Annotated[
        bool, _doc("Allow cross-origin requests with cookies (`Access-Control-Allow-Credentials`)")
    ] = False
    gateway_cors_allow_headers: Annotated[
        str,
        _doc(
            "Request headers web clients may send besides the tRPC ones (`content-type`, `authorization`,"
            " `trpc-accept`, `x-trpc-source`), comma-separated"
        ),
    ] = ""
    gateway_trusted_proxies: Annotated[
        str,
        _doc(
            "Proxies (IP addresses or CIDR networks, comma-separated) whose `X-Forwarded-For` and"
            " `X-Forwarded-Proto` are believed; empty: none"
        ),
    ] = ""
    gateway_native_pay_cache_ttl: Annotated[
        float, msgspec.Meta(ge=0, description="Seconds a domain's Apple Pay / Google Pay answer is cached")
    ] = 300.0
    gateway_public_url: Annotated[
        str, _doc("The gateway's public address (webhook URL); empty: http://GATEWAY_HOST:GATEWAY_PORT")
    ] = ""
    gateway_host: Annotated[str, _doc("Address to listen on")] = "127.0.0.1"
    gateway_port: Annotated[int, msgspec.Meta(ge=0, le=65535, description="Port to listen on")] = 3000
    gateway_merchant_display_name: Annotated[str, _doc("Name the PaymentSheet shows")] = "Votre Boutique"
    gateway_merchant_country: Annotated[
        str, msgspec.Meta(pattern="^[A-Z]{2}$", description="Merchant country (ISO 3166-1 alpha-2)")
    ] = "FR"
    gateway_trpc_transformer: Annotated[
        TransformerMode, _doc("`auto` detects superjson per request; `json` or `superjson` force one")
    ] = "auto"
    gateway_trpc_max_batch_size: Annotated[
        int, msgspec.Meta(ge=1, description="Most calls in one batch request")
    ] = 50
    gateway_trpc_allow_batching: Annotated[bool, _doc("Accept `?batch=1` requests")] = True
    gateway_trpc_allow_method_override: Annotated[
        bool, _doc("Accept queries sent as POST (client `methodOverride: 'POST'`)")
    ] = False
    gateway_max_body_bytes: Annotated[
        int, msgspec.Meta(ge=1024, description="Largest request body; larger is PAYLOAD_TOO_LARGE")
    ] = 1_048_576
    gateway_max_url_bytes: Annotated[
        int, msgspec.Meta(ge=8190, description="Longest request line (batched GET URLs can be long)")
    ] = 65_536
    gateway_max_header_bytes: Annotated[int, msgspec.Meta(ge=8190, description="Longest header line")] = (
        16_384
    )
    gateway_shutdown_timeout: Annotated[
        float, msgspec.Meta(gt=0, description="Seconds in-flight requests get to finish on SIGTERM")
    ] = 30.0
    gateway_log_level: Annotated[LogLevel, _doc("DEBUG, INFO, WARNING or ERROR")] = "INFO"
    gateway_log_file: Annotated[
        str, _doc("Also write JSON logs to this file (rotated); empty: stdout only")
    ] = ""

    @property
    def is_production(self) -> bool:
        return self.node_env == "production"

    @property
    def stripe_test_mode(self) -> bool:
        return not self.stripe_secret_key.startswith(LIVE_SECRET_KEY_PREFIXES)

    @property
    def uses_emulator(self) -> bool:
        """No Stripe key outside production: the gateway runs the local Stripe emulator."""
        return not self.stripe_secret_key and not self.is_production

    @property
    def public_url(self) -> str:
        return (self.gateway_public_url or f"http://{self.gateway_host}:{self.gateway_port}").rstrip("/")


SETTING_DOCS: dict[str, str] = {
    field.name.upper(): (field.type.__metadata__[0].description or "")
    for field in msgspec.structs.fields(Settings)
}
"""Env variable -> description, for `--help` and the README's configuration table."""


class ConfigurationError(Exception):
    """The configuration cannot run the gateway; the message names the variable and what to do."""


def read_dotenv(path: Path) -> dict[str, str]:
    """Parse a `.env` file: `KEY=value` lines, `export` prefixes, quotes and `#` comments."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for raw_line in path.read_text(encoding="utf-8").splitlines():
        line = raw_line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if value[:1] in ("'", '"') and value[0] in value[1:]:
            value = value[1 : value.index(value[0], 1)]  # quoted: up to the closing quote, comments after it
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        values[key.strip()] = value
    return values


def load_settings(environ: Mapping[str, str] | None = None, dotenv: Path | None = Path(".env")) -> Settings:
    """Read settings from `.env` then the environment (which wins), validate them, and check production rules."""
    env = dict(os.environ if environ is None else environ)
    merged = {**(read_dotenv(dotenv) if dotenv else {}), **env}
    known = {field.name.upper(): field.name for field in msgspec.structs.fields(Settings)}
    values = {name: merged[var] for var, name in known.items() if var in merged and merged[var] != ""}
    try:
        settings = msgspec.convert(values, Settings, strict=False)
    except msgspec.ValidationError as error:
        message = str(error)
        for var, name in known.items():
            message = message.replace(f"`$.{name}`", var)
        raise ConfigurationError(f"invalid configuration: {message}") from None
    try:
        parse_webhook_secrets(settings.stripe_webhook_secret)
    except ValueError as error:
        raise ConfigurationError(str(error)) from None
    problems = {**app_secret_problems(settings), **http_list_problems(settings)}
    if problems:
        raise ConfigurationError("; ".join(f"{var}: {text}" for var, text in problems.items()))
    check_production(settings)
    return settings


MIN_APP_SECRET_LENGTH = 32
"""HMAC keys shorter than SHA-256's output are guessable offline from one token (RFC 7518, section 3.2)."""


def qr_secrets(value: str) -> list[str]:
    """QR_SECRET's keys, newest first: the first signs new codes, every one verifies (rolling the key)."""
    return [part.strip() for part in value.split(",") if part.strip()]


def app_secret_problems(settings: Settings) -> dict[str, str]:
    """JWT_SECRET and QR_SECRET keys that are set but too short to be HMAC keys, by variable."""
    problems: dict[str, str] = {}
    if settings.jwt_secret and len(settings.jwt_secret) < MIN_APP_SECRET_LENGTH:
        problems["JWT_SECRET"] = f"too short: at least {MIN_APP_SECRET_LENGTH} characters"
    short = [n for n, key in enumerate(qr_secrets(settings.qr_secret), 1) if len(key) < MIN_APP_SECRET_LENGTH]
    if short:
        which = "the key" if len(qr_secrets(settings.qr_secret)) == 1 else f"key {short[0]} of the list"
        problems["QR_SECRET"] = f"{which} is too short: at least {MIN_APP_SECRET_LENGTH} characters"
    return problems


def http_list_problems(settings: Settings) -> dict[str, str]:
    """The HTTP layer's lists (CORS origins and headers, trusted proxies) that the server could not use, by
    variable: checked here with the server's own parsers, so a typo stops the start instead of silently opening or
    closing something."""
    problems: dict[str, str] = {}
    for var, value, parse in (
        ("GATEWAY_CORS_ORIGINS", settings.gateway_cors_origins, parse_cors_origins),
        ("GATEWAY_CORS_ALLOW_HEADERS", settings.gateway_cors_allow_headers, parse_header_names),
        ("GATEWAY_TRUSTED_PROXIES", settings.gateway_trusted_proxies, parse_trusted_proxies),
    ):
        try:
            parse(value)
        except ValueError as error:
            problems[var] = str(error)
    return problems


def check_production(settings: Settings) -> None:
    """In production, refuse test-mode or missing keys, naming the variable."""
    if not settings.is_production:
        return
    problems = []
    if not settings.stripe_secret_key:
        problems.append(
            "STRIPE_SECRET_KEY is required when NODE_ENV=production (the emulator is for development)"
        )
    elif not settings.stripe_secret_key.startswith(LIVE_SECRET_KEY_PREFIXES):
        problems.append("STRIPE_SECRET_KEY must be a live key (sk_live_…) when NODE_ENV=production")
    if not settings.stripe_webhook_secret:
        problems.append(
            "STRIPE_WEBHOOK_SECRET is required when NODE_ENV=production (without it no webhook can be verified)"
        )
    if not settings.stripe_publishable_key.startswith("pk_live_"):
        problems.append("STRIPE_PUBLISHABLE_KEY must be a live key (pk_live_…) when NODE_ENV=production")
    if not settings.jwt_secret:
        problems.append("JWT_SECRET is required when NODE_ENV=production (without it nobody can sign in)")
    if not qr_secrets(settings.qr_secret):
        problems.append("QR_SECRET is required when NODE_ENV=production (it signs the payment QR codes)")
    if not settings.public_url.startswith("https://"):
        problems.append(
            "GATEWAY_PUBLIC_URL must be an https:// address when NODE_ENV=production (plain HTTP would carry"
            " tokens and client secrets in clear)"
        )
    if problems:
        raise ConfigurationError("; ".join(problems))


class ConfiguredValues(msgspec.Struct, frozen=True, kw_only=True):
    """The configuration as `load_settings` would read it, without stopping at the first problem (for
    `gateway check-payments`, which must report on a configuration the server refuses)."""

    values: dict[str, str]
    """Env variable -> the value `load_settings` would use: `.env` then the environment (which wins), settings'
    variables only, empty values left out (an empty value means the default)."""
    sources: dict[str, str]
    """Env variable -> where its value came from: `environment` or the `.env` file's path."""
    problems: dict[str, str]
    """Env variable -> why `load_settings` refuses its value: msgspec's message, which quotes a value only for a
    choice (`Invalid enum value 'x'`), never for free text such as a key; the webhook secrets' by position."""
    settings: Settings
    """The valid values, with the defaults in place of the refused ones; production rules are not applied."""


def inspect_settings(
    environ: Mapping[str, str] | None = None, dotenv: Path | None = Path(".env")
) -> ConfiguredValues:
    """Read the configuration exactly as `load_settings` does, but return every variable's problem instead of
    raising the first one; `check_production`'s rules are left to the caller."""
    env = dict(os.environ if environ is None else environ)
    from_file = read_dotenv(dotenv) if dotenv else {}
    merged = {**from_file, **env}
    known = {field.name.upper(): field.name for field in msgspec.structs.fields(Settings)}
    values = {var: merged[var] for var in known if var in merged and merged[var] != ""}
    sources = {var: "environment" if var in env else str(dotenv) for var in values}
    problems: dict[str, str] = {}
    valid: dict[str, str] = {}
    for var, value in values.items():
        try:  # one variable at a time, so that each problem is its own (the others keep their defaults)
            msgspec.convert({known[var]: value}, Settings, strict=False)
        except msgspec.ValidationError as error:
            problems[var] = str(error).split(" - at `$.", 1)[0]
        else:
            valid[known[var]] = value
    try:
        parse_webhook_secrets(valid.get("stripe_webhook_secret", ""))
    except ValueError as error:
        problems["STRIPE_WEBHOOK_SECRET"] = str(error).removeprefix("STRIPE_WEBHOOK_SECRET: ")
        del valid["stripe_webhook_secret"]
    checked = msgspec.convert(valid, Settings, strict=False)
    for var, problem in {**app_secret_problems(checked), **http_list_problems(checked)}.items():
        problems[var] = problem
        del valid[known[var]]
    settings = msgspec.convert(valid, Settings, strict=False)
    return ConfiguredValues(values=values, sources=sources, problems=problems, settings=settings)
