"""`gateway smoke --url …` (the seed's `pnpm test:smoke`), run as the operator runs it: the `gateway` command in a
subprocess, against a live `gateway serve` process (test mode, its embedded Stripe emulator) shared by the module.

A live-mode gateway cannot run here (it needs live Stripe keys), so the tests of the live-mode refusal and of
`--allow-live` use a small fake deployment (`FakeGateway`, an aiohttp app in the test) that answers like a
live-mode gateway; so do the tests of failures a healthy gateway cannot be made to show on demand (a failing
health check, a malformed summary, a cancel that fails).

The gateway processes have the tests' JWT_SECRET; `gateway smoke` runs by default where it is set too (so it signs
its own token, as on a machine sharing the deployment's secret), or is given a token, or runs as a guest.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import secrets
import signal
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import jwt as pyjwt
import pytest
from aiohttp import web
from yarl import URL

from gateway.auth.tokens import BearerAuth
from gateway.ops import smoke
from gateway.ops.smoke import Auth, SmokeOptions, Step, redact, resolve_auth, run_smoke
from gateway.settings import Settings
from tests.support.gateway_process import (
    GATEWAY,
    GatewayProcess,
    clean_env,
    free_port,
    gateway_process,
    signed_in_env,
)
from tests.support.tokens import TEST_JWT_SECRET, bearer_headers, token_for

RUN_SECONDS = 60.0
ALL_STEPS = [
    "health",
    "metrics",
    "config",
    "payment.create",
    "payment.status",
    "payment.cancel",
    "bad-input",
    "unknown-procedure",
]
LINE = re.compile(r"^(?P<mark>✓|⚠|✗|-)\s+(?P<name>\S+)\s+(?P<ms>\d+) ms  (?P<detail>.*)$")
CLIENT_SECRET = re.compile(r"_secret_[A-Za-z0-9]")
"""What any client secret (`pi_…_secret_<random>`) has and its redacted form (`pi_…_secret_…`) has not."""
INTENT_ID = re.compile(r"\bpi_[A-Za-z0-9]+\b")
SMOKE_ORDER = re.compile(r"\bsmoke-\d{8}T\d{6}Z-[0-9a-f]{8}\b")
SIGNED_IN = Auth("--token", token_for("ci-smoke"), "with the bearer token of --token")
"""In-process runs (`run_smoke`) as a signed-in user; `Auth()` is a guest."""
JWT = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*")
"""Any bearer token's shape: none may be printed."""
SMOKE_USER = bearer_headers("smoke-test")
"""The user `gateway smoke` names in the token it signs: its orders are theirs."""


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str

    def lines(self) -> list[dict[str, str]]:
        """The step lines of the text output, parsed."""
        return [match.groupdict() for line in self.out.splitlines() if (match := LINE.match(line))]

    def document(self) -> Any:
        return json.loads(self.out)


def smoke_env(**variables: str) -> dict[str, str]:
    """The environment of `gateway smoke` by default: none of the gateway's variables but the tests' JWT_SECRET
    (the deployment's, as on an operator's machine that shares it: the command signs its own token)."""
    return {**clean_env(), "JWT_SECRET": TEST_JWT_SECRET, **variables}


async def run_gateway_smoke(*args: str, cwd: Path, env: dict[str, str] | None = None) -> Run:
    """`gateway smoke ARGS` as a process, in `cwd` (an empty directory: no `.env`), with `env` (default
    `smoke_env()`)."""
    process = await asyncio.create_subprocess_exec(
        str(GATEWAY),
        "smoke",
        *args,
        cwd=cwd,
        env=smoke_env() if env is None else env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), RUN_SECONDS)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return Run(process.returncode, out.decode(), err.decode())


@pytest.fixture(scope="module")
def live_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """One `gateway serve` process (test mode, its own emulator, the tests' JWT_SECRET) for the module's tests."""
    with gateway_process(tmp_path_factory.mktemp("gateway"), signed_in_env()) as gateway:
        yield gateway


@pytest.fixture(scope="module")
def guest_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """A `gateway serve` process with guest checkout on (`GATEWAY_GUEST_CHECKOUT=true`)."""
    env = signed_in_env(GATEWAY_GUEST_CHECKOUT="true")
    with gateway_process(tmp_path_factory.mktemp("guest-gateway"), env) as gateway:
        yield gateway


async def emulator_intent(gateway: GatewayProcess, http: aiohttp.ClientSession, intent_id: str) -> Any:
    """The PaymentIntent as the Stripe emulator has it (with its client secret)."""
    emulator = gateway.emulator()
    async with http.get(
        f"{emulator.api_base}/v1/payment_intents/{intent_id}",
        headers={"authorization": f"Bearer {emulator.secret_key}"},
    ) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def assert_canceled_and_secret_hidden(
    gateway: GatewayProcess, http: aiohttp.ClientSession, run: Run, detail: str
) -> None:
    """The smoke's PaymentIntent (named in `detail`) is canceled at Stripe, for the smoke's order, and its client
    secret is nowhere in what the command printed."""
    [intent_id] = INTENT_ID.findall(detail)
    [order_id] = SMOKE_ORDER.findall(detail)
    intent = await emulator_intent(gateway, http, intent_id)
    assert (intent["status"], intent["amount"], intent["currency"]) == ("canceled", 100, "eur"), intent
    assert intent["metadata"]["order_id"] == order_id
    assert intent["client_secret"].startswith(f"{intent_id}_secret_")
    assert intent["client_secret"] not in run.out + run.err
    assert not CLIENT_SECRET.search(run.out + run.err), run.out
    assert "pi_…_secret_…" in run.out
    assert not JWT.search(run.out + run.err), run.out  # nor any bearer token


# -- against a live gateway process ------------------------------------------------------------------------------


async def test_every_step_passes_against_a_live_gateway_and_leaves_nothing_open(
    live_gateway: GatewayProcess, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    run = await run_gateway_smoke("--url", live_gateway.base_url, cwd=tmp_path)

    assert run.code == 0, run.out + run.err
    lines = run.lines()
    assert [line["name"] for line in lines] == ALL_STEPS, run.out
    # degraded health is a warning (the module's earlier smoke runs' bad-input probes count as failures)
    assert lines[0]["mark"] in {"✓", "⚠"}, run.out
    assert all(line["mark"] == "✓" for line in lines[1:]), run.out
    assert run.out.splitlines()[0] == (
        f"gateway smoke {live_gateway.base_url} (timeout 10 s per request), as user smoke-test (a 5-minute token "
        "signed with JWT_SECRET from the environment)"
    )
    assert run.out.splitlines()[-1].startswith("PASSED: 8 steps in "), run.out
    details = {line["name"]: line["detail"] for line in lines}
    assert "6 fields" in details["metrics"]
    assert "testMode true" in details["config"]
    assert "requires_payment_method" in details["payment.status"]
    assert "canceled" in details["payment.cancel"]
    assert "BAD_REQUEST (HTTP 400)" in details["bad-input"]
    assert "NOT_FOUND (HTTP 404)" in details["unknown-procedure"]
    assert "Traceback" not in run.err
    await assert_canceled_and_secret_hidden(live_gateway, http, run, details["payment.create"])
    # the gateway's store agrees, and the order is smoke-test's (another user is told it does not exist)
    order_id = SMOKE_ORDER.findall(details["payment.create"])[0]
    for caller, answer in ((SMOKE_USER, "canceled"), (bearer_headers("someone-else"), "NOT_FOUND")):
        async with http.get(
            live_gateway.base_url + "/trpc/stripe.getPaymentStatus",
            params={"input": json.dumps({"orderId": order_id})},
            headers=caller,
        ) as response:
            body = await response.json()
            assert (
                body["result"]["data"]["status"] if "result" in body else body["error"]["data"]["code"]
            ) == answer


async def test_json_gives_one_document_with_each_steps_name_ok_duration_and_detail(
    live_gateway: GatewayProcess, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    token = token_for("ci-smoke")  # given with --token, where no JWT_SECRET is set
    run = await run_gateway_smoke(
        "--url", live_gateway.base_url + "/", "--json", "--token", token, cwd=tmp_path, env=clean_env()
    )

    assert run.code == 0, run.out + run.err
    document = run.document()
    assert set(document) == {"url", "auth", "ok", "durationMs", "steps"}
    assert (document["url"], document["auth"], document["ok"]) == (live_gateway.base_url, "--token", True)
    assert token not in run.out + run.err
    assert isinstance(document["durationMs"], int)
    steps = document["steps"]
    assert [step["name"] for step in steps] == ALL_STEPS
    for step in steps:
        assert set(step) == {"name", "ok", "status", "durationMs", "detail"}, step
        assert step["ok"] is True
        assert step["status"] in ({"pass", "warn"} if step["name"] == "health" else {"pass"}), step
        assert isinstance(step["durationMs"], int)
        assert step["durationMs"] >= 0
        assert isinstance(step["detail"], str)
        assert step["detail"]
    await assert_canceled_and_secret_hidden(
        live_gateway, http, run, steps[ALL_STEPS.index("payment.create")]["detail"]
    )


async def _payment_calls(gateway: GatewayProcess, http: aiohttp.ClientSession) -> dict[str, dict[str, int]]:
    async with http.get(gateway.base_url + "/metrics/payments/detailed") as response:
        procedures = (await response.json())["sinceStart"]["procedures"]
    return {
        name: procedures.get(name, {}).get("byCode", {})
        for name in ("stripe.createPaymentIntent", "stripe.cancelPaymentIntent")
    }


async def test_skip_payment_creates_nothing(
    live_gateway: GatewayProcess, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    before = await _payment_calls(live_gateway, http)
    run = await run_gateway_smoke("--url", live_gateway.base_url, "--skip-payment", "--json", cwd=tmp_path)
    after = await _payment_calls(live_gateway, http)

    assert run.code == 0, run.out + run.err
    steps = run.document()["steps"]
    assert [step["name"] for step in steps] == [
        "health",
        "metrics",
        "config",
        "payment",
        "bad-input",
        "unknown-procedure",
    ]
    payment = steps[3]
    assert (payment["status"], payment["ok"]) == ("skip", True)
    assert "--skip-payment" in payment["detail"]
    # Only the bad-input probe reached createPaymentIntent (refused); nothing was created or canceled.
    create_before, create_after = before["stripe.createPaymentIntent"], after["stripe.createPaymentIntent"]
    assert create_after.get("OK", 0) == create_before.get("OK", 0)
    assert create_after.get("BAD_REQUEST", 0) == create_before.get("BAD_REQUEST", 0) + 1
    assert after["stripe.cancelPaymentIntent"] == before["stripe.cancelPaymentIntent"]


async def test_a_gateway_that_answers_in_superjson_is_smoke_tested_too(
    http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """`GATEWAY_TRPC_TRANSFORMER=superjson`: answers are `{"json": …}`, so inputs must be sent so as well."""
    env = signed_in_env(GATEWAY_TRPC_TRANSFORMER="superjson")
    directory = tmp_path / "gateway"
    directory.mkdir()
    with gateway_process(directory, env) as gateway:
        async with http.get(gateway.base_url + "/trpc/stripe.getConfig") as response:
            assert "json" in (await response.json())["result"]["data"]  # it does answer in superjson
        run = await run_gateway_smoke("--url", gateway.base_url, cwd=tmp_path)
    assert run.code == 0, run.out + run.err
    assert [line["name"] for line in run.lines()] == ALL_STEPS


@pytest.mark.parametrize(
    ("source", "args", "variables", "dotenv"),
    [
        pytest.param(
            "GATEWAY_SMOKE_TOKEN", [], {"GATEWAY_SMOKE_TOKEN": token_for("ci-smoke")}, None, id="variable"
        ),
        pytest.param("JWT_SECRET", [], {}, f"JWT_SECRET={TEST_JWT_SECRET}\n", id="dotenv"),
        # --token first: the variable's token (signed with another secret) is not even tried
        pytest.param(
            "--token",
            ["--token", token_for("ci-smoke")],
            {"GATEWAY_SMOKE_TOKEN": token_for("ci-smoke", secret="x" * 40)},
            None,
            id="option-first",
        ),
    ],
)
async def test_the_token_may_come_from_the_variable_or_the_dotenv_jwt_secret(
    live_gateway: GatewayProcess,
    tmp_path: Path,
    source: str,
    args: list[str],
    variables: dict[str, str],
    dotenv: str | None,
) -> None:
    if dotenv is not None:
        (tmp_path / ".env").write_text(dotenv, encoding="utf-8")
    run = await run_gateway_smoke(
        "--url", live_gateway.base_url, "--json", *args, cwd=tmp_path, env={**clean_env(), **variables}
    )

    assert run.code == 0, run.out + run.err
    document = run.document()
    assert (document["auth"], document["ok"]) == (source, True)
    assert [step["name"] for step in document["steps"]] == ALL_STEPS
    assert not JWT.search(run.out + run.err)


@pytest.mark.parametrize(
    ("args", "variables", "said"),
    [
        pytest.param(
            [], {}, ["Sign in: this procedure needs a bearer token", "its guest checkout is off"], id="guest"
        ),
        pytest.param(
            ["--token", token_for("ci-smoke", secret="x" * 40)],
            {},
            ["refused (bad signature)", "the token of --token was refused"],
            id="forged-token",
        ),
        pytest.param(
            [],
            {"GATEWAY_SMOKE_TOKEN": token_for("ci-smoke", ttl_seconds=-600)},
            ["refused (expired)", "the token of GATEWAY_SMOKE_TOKEN was refused"],
            id="expired-token",
        ),
        pytest.param(
            [],
            {"JWT_SECRET": "x" * 40},
            ["refused (bad signature)", "is it the gateway's JWT_SECRET"],
            id="another-jwt-secret",
        ),
    ],
)
async def test_a_caller_the_gateway_refuses_fails_the_payment_steps_with_what_to_do(
    live_gateway: GatewayProcess,
    http: aiohttp.ClientSession,
    tmp_path: Path,
    args: list[str],
    variables: dict[str, str],
    said: list[str],
) -> None:
    before = await _payment_calls(live_gateway, http)
    run = await run_gateway_smoke(
        "--url", live_gateway.base_url, "--json", *args, cwd=tmp_path, env={**clean_env(), **variables}
    )
    after = await _payment_calls(live_gateway, http)

    assert run.code == 1, run.out + run.err
    steps = {step["name"]: step for step in run.document()["steps"]}
    assert [name for name, step in steps.items() if not step["ok"]] == ["payment.create", "bad-input"]
    assert (steps["payment.status"]["status"], steps["payment.cancel"]["status"]) == ("skip", "skip")
    for name in ("payment.create", "bad-input"):
        detail = steps[name]["detail"]
        assert "UNAUTHORIZED (HTTP 401" in detail, detail
        assert "--token" in detail, detail
        assert "JWT_SECRET" in detail, detail
        for words in said:
            assert words in detail, detail
    # refused before anything was created
    create_before, create_after = before["stripe.createPaymentIntent"], after["stripe.createPaymentIntent"]
    assert create_after.get("OK", 0) == create_before.get("OK", 0)
    assert not JWT.search(run.out + run.err)


async def test_a_guest_pays_reads_back_and_cancels_with_the_client_secret_on_a_guest_checkout_gateway(
    guest_gateway: GatewayProcess, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    run = await run_gateway_smoke("--url", guest_gateway.base_url, cwd=tmp_path, env=clean_env())

    assert run.code == 0, run.out + run.err
    assert "as a guest (no --token, GATEWAY_SMOKE_TOKEN or JWT_SECRET)" in run.out.splitlines()[0]
    lines = run.lines()
    assert [line["name"] for line in lines] == ALL_STEPS, run.out
    assert all(line["mark"] == "✓" for line in lines[1:]), run.out
    details = {line["name"]: line["detail"] for line in lines}
    await assert_canceled_and_secret_hidden(guest_gateway, http, run, details["payment.create"])


# -- a gateway that is down; usage errors ------------------------------------------------------------------------


async def test_a_gateway_that_is_down_fails_cleanly_with_a_readable_message(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    run = await run_gateway_smoke("--url", url, "--timeout", "5", cwd=tmp_path)

    assert run.code == 1, run.out + run.err
    assert "Traceback" not in run.out + run.err
    lines = {line["name"]: line for line in run.lines()}
    for name in ("health", "metrics", "config", "bad-input", "unknown-procedure"):
        assert lines[name]["mark"] == "✗", run.out
        assert "connection refused" in lines[name]["detail"], run.out
        assert f"is the gateway running at {url}?" in lines[name]["detail"]
    # its mode unknown, no payment is attempted: not a failure of its own, the config step already failed
    assert (lines["payment"]["mark"], "nothing was created" in lines["payment"]["detail"]) == ("-", True)
    assert run.out.splitlines()[-1].startswith(
        "FAILED: 5 of 6 steps (health, metrics, config, bad-input, unknown"
    )


@pytest.fixture
def hermetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """In-process runs read the environment and `.env` of the working directory (for JWT_SECRET): here, an empty
    directory and none of the gateway's variables."""
    for name in ("JWT_SECRET", smoke.TOKEN_ENV, "NODE_ENV", "GATEWAY_JWT_ISSUER", "GATEWAY_JWT_AUDIENCE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _arguments(*argv: str) -> argparse.Namespace:
    """`gateway smoke ARGV` parsed by the sub-command as registered."""
    parser = argparse.ArgumentParser(prog="gateway")
    smoke.add_command(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["smoke", *argv])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["--url", "ftp://example.com"], "must be an http:// or https:// address", id="scheme"),
        pytest.param(
            ["--url", "payments.example.com"], "must be an http:// or https:// address", id="no-scheme"
        ),
        pytest.param(
            ["--url", "https://x.example/trpc"], "without /trpc: --url https://x.example", id="trpc"
        ),
        pytest.param(["--url", "https://x.example/?a=1"], "without ?query", id="query"),
        pytest.param(["--url", "https://me:pw@x.example"], "must not carry credentials", id="credentials"),
        pytest.param(
            ["--url", "https://x.example", "--header", "Bearer s3cr3t-value"], "NAME:VALUE", id="header"
        ),
        pytest.param(["--url", "https://x.example", "--amount", "10"], "at least 50 for EUR", id="amount"),
        pytest.param(
            ["--url", "https://x.example", "--token", ""], "--token: not a bearer token", id="empty-token"
        ),
        pytest.param(
            ["--url", "https://x.example", "--token", "s3cr3t two-words"],
            "--token: not a bearer token",
            id="token",
        ),
        pytest.param(
            [
                "--url",
                "https://x.example",
                "--token",
                "s3cr3t",
                "--header",
                "Authorization: Bearer s3cr3t-value",
            ],
            "both give a credential",
            id="token-and-header",
        ),
    ],
)
def test_usage_errors_exit_2_and_say_what_to_fix(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], hermetic: Path
) -> None:
    code = smoke.run(_arguments(*argv))
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert err.startswith("gateway smoke: ")
    assert message in err
    # a secret given the wrong way is not repeated
    assert "s3cr3t" not in err
    assert "pw@" not in err


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["--url", "https://x.example", "--timeout", "0"], id="timeout"),
        pytest.param(["--url", "https://x.example", "--currency", "xyz"], id="currency"),
        pytest.param([], id="no-url"),
    ],
)
def test_bad_option_values_are_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        _arguments(*argv)
    assert exited.value.code == 2
    assert "gateway smoke: error:" in capsys.readouterr().err


def test_a_jwt_secret_too_short_to_sign_with_is_a_usage_error_that_does_not_repeat_it(
    hermetic: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (hermetic / ".env").write_text("JWT_SECRET=short-s3cr3t\n", encoding="utf-8")
    code = smoke.run(_arguments("--url", "https://x.example"))
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert "JWT_SECRET (from .env): too short" in err
    assert "--token" in err
    assert "s3cr3t" not in err


def test_help_says_how_the_run_authenticates(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        _arguments("--help")
    assert exited.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for words in (
        "--token TOKEN",
        "$GATEWAY_SMOKE_TOKEN",
        "JWT_SECRET",
        "smoke-test",
        "guest",
        "never printed",
    ):
        assert words in text, words


async def test_the_gateway_command_exits_2_on_a_bad_url(tmp_path: Path) -> None:
    run = await run_gateway_smoke("--url", "ftp://example.com", cwd=tmp_path)
    assert (run.code, run.out) == (2, "")
    assert "gateway smoke: --url must be an http:// or https:// address" in run.err


# -- where the token comes from ----------------------------------------------------------------------------------

OTHER_SECRET = "another-jwt-secret-that-is-long-enough-0123"


def _auth(
    tmp_path: Path,
    environ: dict[str, str],
    *,
    token: str | None = None,
    dotenv: str | None = None,
    dev_secret: str | None = None,
) -> Auth:
    """`resolve_auth` with `environ`, a `.env` holding `dotenv` and a `data/dev-secrets.json` with `dev_secret`."""
    if dotenv is not None:
        (tmp_path / ".env").write_text(dotenv, encoding="utf-8")
    dev_secrets = tmp_path / "data" / "dev-secrets.json"
    if dev_secret is not None:
        dev_secrets.parent.mkdir(exist_ok=True)
        dev_secrets.write_text(
            json.dumps({"jwt_secret": dev_secret, "qr_secret": "x" * 40}), encoding="utf-8"
        )
    return resolve_auth(token, (), environ, tmp_path / ".env", dev_secrets)


def _signed_by(auth: Auth, secret: str, issuer: str = "", audience: str = "") -> str:
    """The user a minted token names, as a gateway with `secret` (and that issuer and audience) reads it."""
    assert auth.token is not None
    settings = Settings(jwt_secret=secret, gateway_jwt_issuer=issuer, gateway_jwt_audience=audience)
    return BearerAuth(settings).caller(f"Bearer {auth.token}").user_id


def test_the_token_is_the_option_then_the_variable_then_one_signed_with_the_local_jwt_secret(
    tmp_path: Path,
) -> None:
    everything = {smoke.TOKEN_ENV: "from-the-variable", "JWT_SECRET": TEST_JWT_SECRET}
    dotenv = f"JWT_SECRET={OTHER_SECRET}\n"

    given = _auth(
        tmp_path, everything, token="Bearer from-the-option", dotenv=dotenv, dev_secret=OTHER_SECRET
    )
    variable = _auth(tmp_path, everything)
    environment = _auth(tmp_path, {"JWT_SECRET": TEST_JWT_SECRET})  # wins over .env, as for the gateway
    from_dotenv = _auth(tmp_path, {})
    (tmp_path / ".env").unlink()
    demo = _auth(tmp_path, {}, dev_secret=TEST_JWT_SECRET)
    production_demo = _auth(tmp_path, {"NODE_ENV": "production"})  # never the development secrets
    (tmp_path / "data" / "dev-secrets.json").unlink()
    guest = _auth(tmp_path, {})

    assert (given.source, given.token) == ("--token", "from-the-option")  # a pasted header value works too
    assert (variable.source, variable.token) == (smoke.TOKEN_ENV, "from-the-variable")
    assert _signed_by(environment, TEST_JWT_SECRET) == "smoke-test"
    assert _signed_by(from_dotenv, OTHER_SECRET) == "smoke-test"
    assert "JWT_SECRET from the environment" in environment.about
    assert "JWT_SECRET from " + str(tmp_path / ".env") in from_dotenv.about
    assert _signed_by(demo, TEST_JWT_SECRET) == "smoke-test"
    assert "dev-secrets.json" in demo.about
    assert (production_demo.source, production_demo.token) == ("guest", None)
    assert (guest.source, guest.token, guest.guest) == ("guest", None, True)
    assert not (tmp_path / "data" / "dev-secrets.json").exists()  # read, never created
    for auth in (given, variable, environment, from_dotenv, demo):
        assert auth.token is not None
        assert auth.token not in auth.about + repr(auth)


def test_a_minted_token_lives_five_minutes_and_carries_the_configured_issuer_and_audience(
    tmp_path: Path,
) -> None:
    claims = {"GATEWAY_JWT_ISSUER": "https://login.example.com", "GATEWAY_JWT_AUDIENCE": "payments"}
    auth = _auth(tmp_path, {"JWT_SECRET": TEST_JWT_SECRET, **claims})
    assert auth.token is not None

    payload = pyjwt.decode(auth.token, options={"verify_signature": False})
    assert payload["exp"] - payload["iat"] == 300
    assert "roles" not in payload  # a plain user: the smoke test needs no role
    assert (
        _signed_by(
            auth,
            TEST_JWT_SECRET,
            issuer=claims["GATEWAY_JWT_ISSUER"],
            audience=claims["GATEWAY_JWT_AUDIENCE"],
        )
        == "smoke-test"
    )


# -- a fake deployment: live mode, and failures on demand ---------------------------------------------------------


def _result(data: object) -> web.Response:
    return web.json_response({"result": {"data": data}})


def _error(status: int, code: str, path: str, message: str, **extra: object) -> web.Response:
    numbers = {400: -32600, 404: -32004, 409: -32009, 500: -32603, 502: -32603}
    body = {
        "error": {
            "message": message,
            "code": numbers[status],
            "data": {"code": code, "httpStatus": status, "path": path, **extra},
        }
    }
    return web.json_response(body, status=status)


LEAKED_KEY = "sk_live_" + "51Hsecretkey9876"
API_KEY = "smoke-api-key-0123456789"
HEALTHY_LIVE = {
    "status": "healthy",
    "timestamp": "2026-01-15T10:30:00.000Z",
    "uptimeSeconds": 12.5,
    "version": "0.1.0",
    "stripeMode": "live",
    "checks": {
        "store": {"status": "pass"},
        "stripe": {"status": "pass"},
        "configuration": {"status": "pass"},
    },
}
SUMMARY = {
    "totalPayments": 150,
    "successCount": 142,
    "failureCount": 8,
    "successRate": "94.67%",
    "averageResponseTime": "0.234s",
    "lastUpdated": "2024-01-15T10:30:00.000Z",
}


@dataclass
class FakeGateway:
    """Answers the smoke test's requests like a gateway would, configured per test; records what it was asked."""

    test_mode: bool = False
    health_status: int = 200
    health: dict[str, object] = field(default_factory=lambda: dict(HEALTHY_LIVE))
    summary: dict[str, object] = field(default_factory=lambda: dict(SUMMARY))
    create_fails: tuple[int, str] | None = None
    """(HTTP status, tRPC code) of the error the create answers."""
    cancel_fails: bool = False
    bad_input_crashes: bool = False
    bad_input_path: tuple[str, ...] = ("amount",)
    """The path its BAD_REQUEST issue names."""
    unknown_answers_html: bool = False
    hold_status: bool = False
    """getPaymentStatus waits until the test ends (`status_asked` is set when it is asked)."""
    intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Created PaymentIntents, by order id (with their client secrets)."""
    canceled: list[str] = field(default_factory=list)
    calls: list[tuple[str, object]] = field(default_factory=list)
    """(procedure, input) of every tRPC call."""
    api_key: str = ""
    """The `x-api-key` header of the last request."""
    authorization: str = ""
    """The `authorization` header of the last request."""
    status_asked: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path == "/metrics/payments/health":
            return web.json_response(self.health, status=self.health_status)
        if path == "/metrics/payments":
            return web.json_response(self.summary)
        if not path.startswith("/trpc/"):
            return web.Response(status=404, text="not found")
        procedure = path.removeprefix("/trpc/")
        if request.method == "POST":
            value = await request.json()
        else:
            value = json.loads(request.query["input"]) if "input" in request.query else None
        self.calls.append((procedure, value))
        self.api_key = request.headers.get("x-api-key", "")
        self.authorization = request.headers.get("authorization", "")
        handler = {
            "stripe.getConfig": self._config,
            "stripe.createPaymentIntent": self._create,
            "stripe.getPaymentStatus": self._status,
            "stripe.cancelPaymentIntent": self._cancel,
        }.get(procedure)
        if handler is None:
            if self.unknown_answers_html:  # a single-page app's fallback route in front of the gateway
                return web.Response(text="<!doctype html><title>Shop</title>", content_type="text/html")
            return _error(404, "NOT_FOUND", procedure, f'No procedure found on path "{procedure}"')
        return await handler(value)

    async def _config(self, _: Any) -> web.Response:
        key = "pk_test_fake0000" if self.test_mode else "pk_live_fake0000"
        return _result(
            {
                "publishableKey": key,
                "merchantDisplayName": "Shop",
                "merchantCountryCode": "FR",
                "testMode": self.test_mode,
            }
        )

    async def _create(self, value: Any) -> web.Response:
        path = "stripe.createPaymentIntent"
        if not isinstance(value["amount"], int) or value["amount"] < 1:
            if self.bad_input_crashes:  # and its message leaks secrets, which the smoke test must not print
                leak = (
                    f"TypeError: '<' not supported (key {LEAKED_KEY}, x-api-key {self.api_key}, "
                    f"token {self.authorization.removeprefix('Bearer ')})"
                )
                return _error(500, "INTERNAL_SERVER_ERROR", path, leak)
            issue = {
                "code": "too_small",
                "path": list(self.bad_input_path),
                "message": "Expected number >= 1",
            }
            return _error(400, "BAD_REQUEST", path, "[…]", issues=[issue])
        if self.create_fails is not None:
            status, code = self.create_fails
            return _error(status, code, path, "Stripe could not be reached" if status >= 500 else "Refused")
        intent_id = f"pi_fake{secrets.token_hex(6)}"
        intent = {
            "orderId": value["orderId"],
            "paymentIntentId": intent_id,
            "clientSecret": f"{intent_id}_secret_{secrets.token_hex(12)}",
            "amount": value["amount"],
            "currency": value["currency"],
            "status": "requires_payment_method",
            "publishableKey": "pk_live_fake0000",
            "customerId": None,
            "ephemeralKey": None,
        }
        self.intents[value["orderId"]] = intent
        return _result(intent)

    async def _status(self, value: Any) -> web.Response:
        if self.hold_status:
            self.status_asked.set()
            await self.release.wait()
        intent = self.intents[value["orderId"]]
        return _result(
            {
                "orderId": intent["orderId"],
                "status": intent["status"],
                "amount": intent["amount"],
                "currency": intent["currency"],
                "amountReceived": 0,
                "amountRefunded": 0,
                "refundStatus": "none",
                "paymentIntentId": intent["paymentIntentId"],
                "lastPaymentError": None,
                "updatedAt": "2026-01-15T10:30:00.000Z",
            }
        )

    async def _cancel(self, value: Any) -> web.Response:
        if value["orderId"] not in self.intents:
            return _error(404, "NOT_FOUND", "stripe.cancelPaymentIntent", f'No order "{value["orderId"]}"')
        if self.cancel_fails:
            secret = self.intents[value["orderId"]]["clientSecret"]
            message = f"Stripe could not be reached to cancel {secret}"
            return _error(502, "BAD_GATEWAY", "stripe.cancelPaymentIntent", message)
        self.canceled.append(value["orderId"])
        self.intents[value["orderId"]]["status"] = "canceled"
        return _result({"orderId": value["orderId"], "status": "canceled"})

    def client_secrets(self) -> list[str]:
        return [intent["clientSecret"] for intent in self.intents.values()]


@asynccontextmanager
async def serving(fake: FakeGateway) -> AsyncIterator[str]:
    """The fake on a free 127.0.0.1 port: its base URL."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        fake.release.set()
        await runner.cleanup()


async def test_refuses_the_payment_on_a_live_mode_gateway__a_fake_one_as_live_keys_cannot_be_used_here(
    tmp_path: Path,
) -> None:
    fake = FakeGateway(test_mode=False)
    async with serving(fake) as url:
        text = await run_gateway_smoke("--url", url, cwd=tmp_path)
        run = await run_gateway_smoke("--url", url, "--json", cwd=tmp_path)

    assert (text.code, run.code) == (1, 1), text.out + text.err
    steps = {step["name"]: step for step in run.document()["steps"]}
    assert list(steps) == ["health", "metrics", "config", "payment", "bad-input", "unknown-procedure"]
    assert [name for name, step in steps.items() if not step["ok"]] == ["payment"]  # the only failure
    assert "REFUSED" in steps["payment"]["detail"]
    assert "LIVE mode" in steps["payment"]["detail"]
    assert "--allow-live" in steps["payment"]["detail"]
    assert "testMode false" in steps["config"]["detail"]
    [payment_line] = [line for line in text.lines() if line["name"] == "payment"]
    assert payment_line["mark"] == "✗"
    assert "nothing was created" in payment_line["detail"]
    # nothing was created: the only createPaymentIntent calls were the bad-input probes (amount -5), no cancel
    creates = [value for procedure, value in fake.calls if procedure == "stripe.createPaymentIntent"]
    assert [value["amount"] for value in creates] == [-5, -5]  # type: ignore[index]
    assert fake.intents == {}
    assert not [procedure for procedure, _ in fake.calls if procedure == "stripe.cancelPaymentIntent"]


async def test_allow_live_warns_then_creates_and_cancels_on_a_fake_live_mode_gateway(tmp_path: Path) -> None:
    fake = FakeGateway(test_mode=False)
    async with serving(fake) as url:
        run = await run_gateway_smoke("--url", url, "--allow-live", cwd=tmp_path)

    assert run.code == 0, run.out + run.err
    lines = run.lines()
    assert [line["name"] for line in lines] == ["health", "metrics", "config", "payment", *ALL_STEPS[3:]]
    marks = {line["name"]: line["mark"] for line in lines}
    assert (marks["payment"], marks["payment.create"], marks["payment.cancel"]) == ("⚠", "⚠", "✓")
    assert "--allow-live: creating a REAL PaymentIntent" in lines[3]["detail"]
    [order_id] = fake.intents
    assert fake.canceled == [order_id]
    assert SMOKE_ORDER.fullmatch(order_id)
    assert run.out.splitlines()[-1].startswith("PASSED: 9 steps in "), run.out
    [client_secret] = fake.client_secrets()
    assert client_secret not in run.out
    assert not CLIENT_SECRET.search(run.out)


async def test_each_failure_is_reported_and_the_later_steps_still_run(tmp_path: Path) -> None:
    """Unhealthy, a summary not in the seed's format, a cancel that fails, a crash on bad input, an unknown
    procedure answered by something else: each step says what is wrong, and none stops the others."""
    fake = FakeGateway(
        test_mode=True,
        health_status=503,
        health={
            **HEALTHY_LIVE,
            "status": "unhealthy",
            "stripeMode": "test",
            "checks": {
                "store": {"status": "fail", "error": "database is locked"},
                "stripe": {"status": "pass"},
                "paymentFailureRate": {"status": "warn", "value": "9.00%", "threshold": "5.00%"},
            },
        },
        summary={**SUMMARY, "successRate": "94.7%", "extra": 1},
        cancel_fails=True,
        bad_input_crashes=True,
        unknown_answers_html=True,
    )
    async with serving(fake) as url:
        run = await run_gateway_smoke(
            "--url", url, "--json", "--header", f"X-Api-Key: {API_KEY}", cwd=tmp_path
        )

    assert run.code == 1, run.out + run.err
    assert fake.api_key == API_KEY  # sent with every request
    assert fake.authorization.startswith("Bearer eyJ")  # the token signed with the local JWT_SECRET
    document = run.document()
    steps = {step["name"]: step for step in document["steps"]}
    assert list(steps) == ALL_STEPS
    failed = [name for name, step in steps.items() if not step["ok"]]
    assert failed == ["health", "metrics", "payment.cancel", "bad-input", "unknown-procedure"]
    assert document["ok"] is False
    assert "HTTP 503, unhealthy" in steps["health"]["detail"]
    assert "store fail (database is locked)" in steps["health"]["detail"]
    assert "paymentFailureRate" not in steps["health"]["detail"]  # only what fails
    assert "successRate '94.7%' is not like \"94.67%\"" in steps["metrics"]["detail"]
    assert "unexpected extra" in steps["metrics"]["detail"]
    [order_id] = fake.intents
    cancel = steps["payment.cancel"]["detail"]
    assert "BAD_GATEWAY (HTTP 502)" in cancel
    assert fake.intents[order_id]["paymentIntentId"] in cancel
    assert f'{{"orderId":"{order_id}"}}' in cancel  # what to cancel by hand
    assert "left open" in cancel
    assert (
        "expected BAD_REQUEST (HTTP 400), got INTERNAL_SERVER_ERROR (HTTP 500" in steps["bad-input"]["detail"]
    )
    assert "not JSON: '<!doctype html>" in steps["unknown-procedure"]["detail"]
    # what the gateway's messages leaked is not printed whole
    assert "Stripe could not be reached to cancel pi_…_secret_…" in cancel
    assert "(key sk_live_…9876, x-api-key …, token …)" in steps["bad-input"]["detail"]
    assert not CLIENT_SECRET.search(run.out)
    for leaked in [*fake.client_secrets(), LEAKED_KEY, API_KEY, fake.authorization.removeprefix("Bearer ")]:
        assert leaked not in run.out + run.err
    assert not JWT.search(run.out + run.err)


@pytest.mark.parametrize(
    ("failure", "auth", "cancel", "cancel_detail"),
    [
        pytest.param(
            (409, "CONFLICT"), SIGNED_IN, "skip", "the create was refused, nothing to cancel", id="refused"
        ),
        # a 5xx may hide an intent made at Stripe: the cancel is tried (here the order does not exist: fine)
        pytest.param(
            (502, "BAD_GATEWAY"),
            SIGNED_IN,
            "pass",
            "does not exist: the failed create made nothing",
            id="5xx",
        ),
        # ... but a guest without the client secret is told NOT_FOUND for an existing order too: not a proof
        pytest.param(
            (502, "BAD_GATEWAY"),
            Auth(),
            "warn",
            "a guest without the client secret cannot tell a missing order from another's",
            id="5xx-guest",
        ),
    ],
)
async def test_when_the_create_fails_its_follow_ups_are_skipped_and_the_probes_still_run(
    failure: tuple[int, str], auth: Auth, cancel: str, cancel_detail: str
) -> None:
    fake = FakeGateway(test_mode=True, health={**HEALTHY_LIVE, "stripeMode": "test"}, create_fails=failure)
    async with serving(fake) as url:
        steps = await run_smoke(SmokeOptions(url=URL(url), auth=auth))

    assert [(step.name, step.status) for step in steps] == [
        ("health", "pass"),
        ("metrics", "pass"),
        ("config", "pass"),
        ("payment.create", "fail"),
        ("payment.status", "skip"),
        ("payment.cancel", cancel),
        ("bad-input", "pass"),
        ("unknown-procedure", "pass"),
    ]
    status, code = failure
    assert f"{code} (HTTP {status}" in steps[3].detail
    assert cancel_detail in steps[5].detail


@pytest.mark.parametrize("auth", [pytest.param(Auth(), id="guest"), pytest.param(SIGNED_IN, id="signed-in")])
async def test_only_a_guest_sends_the_client_secret_back_and_it_is_never_printed(auth: Auth) -> None:
    """A guest proves the order is its own with the client secret; a signed-in user's token is the proof."""
    fake = FakeGateway(test_mode=True, health={**HEALTHY_LIVE, "stripeMode": "test"})
    async with serving(fake) as url:
        steps = await run_smoke(SmokeOptions(url=URL(url), auth=auth))

    assert all(step.ok for step in steps), steps
    [secret] = fake.client_secrets()
    follow_ups: list[Any] = [
        value
        for procedure, value in fake.calls
        if procedure in ("stripe.getPaymentStatus", "stripe.cancelPaymentIntent")
    ]
    assert len(follow_ups) == 2
    assert [value.get("clientSecret") for value in follow_ups] == [secret if auth.guest else None] * 2
    assert fake.authorization == ("" if auth.guest else f"Bearer {auth.token}")
    shown = "".join(step.detail for step in steps)
    assert secret not in shown
    assert auth.token is None or auth.token not in shown


async def test_a_bad_request_that_does_not_name_the_amount_fails_the_probe() -> None:
    fake = FakeGateway(
        test_mode=True, health={**HEALTHY_LIVE, "stripeMode": "test"}, bad_input_path=("currency",)
    )
    async with serving(fake) as url:
        steps = await run_smoke(SmokeOptions(url=URL(url), skip_payment=True))

    [probe] = [step for step in steps if step.name == "bad-input"]
    assert probe.status == "fail"
    assert "data.issues does not name the path ['amount'] (paths: [['currency']])" in probe.detail


async def test_an_interrupted_run_cancels_the_intent_it_created_before_stopping() -> None:
    """Ctrl-C (the run's task canceled) while the payment's status is asked: the intent is canceled first."""
    fake = FakeGateway(test_mode=True, health={**HEALTHY_LIVE, "stripeMode": "test"}, hold_status=True)
    emitted: list[Step] = []
    async with serving(fake) as url:
        task = asyncio.create_task(run_smoke(SmokeOptions(url=URL(url)), emitted.append))
        await asyncio.wait_for(fake.status_asked.wait(), RUN_SECONDS)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    [order_id] = fake.intents
    assert fake.canceled == [order_id]
    assert [(step.name, step.status) for step in emitted][-2:] == [
        ("payment.create", "pass"),
        ("payment.cancel", "pass"),
    ]


async def test_ctrl_c_cancels_the_intent_and_exits_130(tmp_path: Path) -> None:
    """SIGINT to the `gateway smoke` process while the payment's status is asked."""
    fake = FakeGateway(test_mode=True, health={**HEALTHY_LIVE, "stripeMode": "test"}, hold_status=True)
    async with serving(fake) as url:
        process = await asyncio.create_subprocess_exec(
            str(GATEWAY),
            "smoke",
            "--url",
            url,
            cwd=tmp_path,
            env=clean_env(),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            await asyncio.wait_for(fake.status_asked.wait(), RUN_SECONDS)
            process.send_signal(signal.SIGINT)
            out, err = await asyncio.wait_for(process.communicate(), RUN_SECONDS)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()

    assert process.returncode == 130, out.decode() + err.decode()
    assert err.decode() == "gateway smoke: interrupted\n"
    [order_id] = fake.intents
    assert fake.canceled == [order_id]
    assert re.search(r"^✓\s+payment\.cancel\s.*canceled, nothing left open$", out.decode(), re.MULTILINE), out


# -- redaction ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        pytest.param("secret pi_3Nabc_secret_XyZ123 here", "secret pi_…_secret_… here", id="client-secret"),
        pytest.param("seti_1Ab_secret_Q9", "seti_…_secret_…", id="setup-intent-secret"),
        pytest.param(("key sk_live_" + "51Habcdefgh1234"), "key sk_live_…1234", id="secret-key"),
        pytest.param("rk_test_abcdEFGH", "rk_test_…EFGH", id="restricted-key"),
        pytest.param("whsec_abc123", "whsec_…", id="webhook-secret"),
        pytest.param("ek_test_YWNjdF8x", "ek_test_…", id="ephemeral-key"),
        pytest.param("Authorization: Bearer abc.def", "Authorization: Bearer …", id="bearer"),
        pytest.param("token eyJhbGciOi.eyJzdWIiOj.sig-nat_ure", "token eyJ…", id="jwt"),
        pytest.param("cut short eyJhbGciOi.eyJzdWIiOjE3", "cut short eyJ…", id="jwt-cut-short"),
        pytest.param(
            "The bearer token was refused (expired)",
            "The bearer token was refused (expired)",
            id="bearer-words",
        ),
        pytest.param(
            "pk_test_emulator pi_123 order smoke-1", "pk_test_emulator pi_123 order smoke-1", id="not-secret"
        ),
    ],
)
def test_secret_looking_values_are_never_shown_whole(text: str, shown: str) -> None:
    assert redact(text) == shown
    assert redact(shown) == shown  # a message is redacted before it is shortened, and again as a whole


def test_header_values_are_hidden_wherever_they_appear() -> None:
    assert redact("echoed: my-api-key-123 (x-api-key)", ["my-api-key-123"]) == "echoed: … (x-api-key)"
