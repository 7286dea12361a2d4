"""`gateway serve`: starts on its defaults, answers, and stops gracefully on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import aiosqlite
import pytest

from gateway.store.migrations import MIGRATIONS, Migration, apply_migrations

REPO = Path(__file__).resolve().parents[2]
GATEWAY = Path(sys.executable).parent / "gateway"
READY_TIMEOUT_S = 20


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def read_until(process: subprocess.Popen[str], marker: str) -> list[str]:
    """Lines the process printed up to and including the first that contains `marker` (polls, never sleeps)."""
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if marker in line:
            return lines
    raise AssertionError(f"{marker!r} never appeared; output: {''.join(lines)}")


@pytest.fixture
def clean_env() -> dict[str, str]:
    """An environment with none of the gateway's variables, run from an empty directory (no .env)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GATEWAY_", "STRIPE_", "NODE_ENV")) and k not in ("JWT_SECRET", "QR_SECRET")
    }
    env["PYTHONPATH"] = str(REPO)
    return env


def start(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        args, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def stop(process: subprocess.Popen[str]) -> tuple[int, str]:
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=20)
    return process.returncode, out


async def test_serve_without_keys_runs_the_offline_demo_on_the_local_emulator(
    clean_env: dict[str, str], tmp_path: Path
) -> None:
    """The README's first command: no configuration at all. `gateway serve` starts the Stripe emulator (and
    generates the development JWT_SECRET), `gateway token` signs a token for a demo user with it, an order is
    created through the gateway with that token, paid with `gateway dev pay`, the emulator's webhook tells the
    gateway, and the order reads `succeeded`; SIGTERM stops both."""
    port = free_port()
    process = start([str(GATEWAY), "serve", "--port", str(port)], clean_env, tmp_path)
    base = f"http://127.0.0.1:{port}/trpc/stripe."
    try:
        started = read_until(process, "gateway_listening")
        emulator_pid = json.loads((tmp_path / "data" / "emulator.json").read_text())["pid"]
        minted = await asyncio.to_thread(
            subprocess.run,
            [str(GATEWAY), "token", "--user", "demo-user"],
            env=clean_env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert minted.returncode == 0, minted.stderr
        signed_in = {"authorization": f"Bearer {minted.stdout.strip()}"}
        async with aiohttp.ClientSession(headers=signed_in) as http:
            async with http.get(base + "getConfig") as response:
                assert response.status == 200
                config = (await response.json())["result"]["data"]
            order = {"orderId": "demo-1", "amount": 2500, "currency": "eur"}
            async with http.post(base + "createPaymentIntent", json=order) as response:
                assert response.status == 200, await response.text()
                created = (await response.json())["result"]["data"]
            paid = await asyncio.to_thread(
                subprocess.run,
                [str(GATEWAY), "dev", "pay", "--order-id", "demo-1"],
                env=clean_env,
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=60,
            )
            # dev pay only pays at Stripe, as the phone does: the store learns it from the emulator's webhook.
            delivered = read_until(process, "webhook_event_applied")
            async with http.get(
                base + "getPaymentStatus", params={"input": '{"orderId":"demo-1"}'}
            ) as response:
                status = (await response.json())["result"]["data"]
    finally:
        code, out = stop(process)
    assert config == {
        "publishableKey": "pk_test_emulator",
        "merchantDisplayName": "Votre Boutique",
        "merchantCountryCode": "FR",
        "testMode": True,
    }
    assert created["status"] == "requires_payment_method"
    assert (paid.returncode, paid.stdout.strip()) == (0, "order demo-1: succeeded"), paid.stderr
    assert (status["status"], status["amountReceived"]) == ("succeeded", 2500)
    assert code == 0
    applied = json.loads(delivered[-1])
    assert (applied["type"], applied["status"]) == ("payment_intent.succeeded", "succeeded")
    lines = [*started, *delivered, *out.splitlines()]
    events = [json.loads(line)["event"] for line in lines if line.startswith("{")]
    assert events.index("stripe_emulator_started") < events.index("gateway_listening")
    assert "payment_request_completed" in events
    assert events[-2:] == ["gateway_stopped", "stripe_emulator_stopped"]
    assert created["clientSecret"] not in "".join(lines)  # GDPR / PCI: no client secret in any log line
    assert minted.stdout.strip() not in "".join(lines)  # nor the bearer token
    with pytest.raises(ProcessLookupError):
        os.kill(emulator_pid, 0)
    assert (tmp_path / "data" / "gateway.sqlite3").is_file()


async def test_sigterm_lets_the_request_in_flight_finish(clean_env: dict[str, str], tmp_path: Path) -> None:
    port = free_port()
    process = start([sys.executable, "-m", "tests.support.serve_fixture", str(port)], clean_env, tmp_path)
    try:
        read_until(process, "gateway_listening")
        async with aiohttp.ClientSession() as http:

            async def call_hold() -> tuple[int, object]:
                async with http.get(f"http://127.0.0.1:{port}/trpc/hold") as response:
                    return response.status, await response.json()

            in_flight = asyncio.create_task(call_hold())
            await asyncio.to_thread(read_until, process, "holding")  # the procedure is running now
            process.send_signal(signal.SIGTERM)
            assert await in_flight == (200, {"result": {"data": "released"}})
        out, _ = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0
    assert '"event":"gateway_stopped"' in out


@pytest.mark.parametrize(
    ("secret_key", "message"),
    [
        pytest.param(None, "STRIPE_SECRET_KEY is required", id="missing"),
        pytest.param("sk_test_abc", "STRIPE_SECRET_KEY must be a live key", id="test-key"),
        # live keys, but no JWT_SECRET: production never falls back to generated development secrets
        pytest.param("sk_live_" + "abc", "JWT_SECRET is required", id="no-jwt-secret"),
    ],
)
def test_production_refuses_missing_or_test_keys_and_names_the_variable(
    clean_env: dict[str, str], tmp_path: Path, secret_key: str | None, message: str
) -> None:
    env = {**clean_env, "NODE_ENV": "production", "STRIPE_PUBLISHABLE_KEY": "pk_live_abc"}
    if secret_key is not None:
        env["STRIPE_SECRET_KEY"] = secret_key
    result = subprocess.run(
        [str(GATEWAY), "serve"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert "STRIPE_PUBLISHABLE_KEY" not in result.stderr
    assert not (tmp_path / "data").exists()  # refused before anything was started or written


def test_several_workers_on_one_port_are_refused_before_anything_starts(
    clean_env: dict[str, str], tmp_path: Path
) -> None:
    """Each process keeps its own metrics: N workers behind one port would serve one random worker's figures."""
    result = subprocess.run(
        [str(GATEWAY), "serve", "--workers", "4", "--port", str(free_port())],
        env=clean_env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "--workers 4 is refused" in result.stderr
    assert "Run 4 replicas instead, each on a port of its own" in result.stderr
    assert not (tmp_path / "data").exists()  # no emulator, no store


def test_one_worker_is_the_default_and_may_be_asked_for(clean_env: dict[str, str], tmp_path: Path) -> None:
    process = start(
        [str(GATEWAY), "serve", "--workers", "1", "--port", str(free_port())], clean_env, tmp_path
    )
    try:
        read_until(process, "gateway_listening")
    finally:
        code, output = stop(process)
    assert code == 0, output


def test_a_database_a_newer_gateway_migrated_beyond_this_one_stops_the_start_with_a_clear_error(
    clean_env: dict[str, str], tmp_path: Path
) -> None:
    """A rolling upgrade gone wrong: a newer gateway applied a migration this one may not run on (a contract
    migration). The old one must not serve (it would write through a schema it does not know), and must say why."""
    database = tmp_path / "data" / "gateway.sqlite3"
    database.parent.mkdir()
    breaking = Migration(
        99, "a newer gateway's breaking migration", ("ALTER TABLE orders ADD COLUMN x TEXT",)
    )

    async def migrate() -> None:
        async with aiosqlite.connect(database, isolation_level=None) as connection:
            await apply_migrations(connection, lambda: "2026-12-03T00:00:00.000Z", (*MIGRATIONS, breaking))

    asyncio.run(migrate())
    result = subprocess.run(
        [str(GATEWAY), "serve", "--port", str(free_port())],
        env=clean_env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert "gateway serve: store: the database schema is at version 99, newer than this gateway knows" in (
        result.stderr
    )
    assert "Traceback" not in result.stdout + result.stderr
    assert '"event":"gateway_start_failed"' in result.stdout
