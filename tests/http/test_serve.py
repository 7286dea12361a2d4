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
import pytest

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
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "STRIPE_", "NODE_ENV"))}
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


async def test_serve_answers_get_config_and_stops_on_sigterm(
    clean_env: dict[str, str], tmp_path: Path
) -> None:
    port = free_port()
    process = start([str(GATEWAY), "serve", "--port", str(port)], clean_env, tmp_path)
    try:
        read_until(process, "gateway_listening")
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{port}/trpc/stripe.getConfig") as response,
        ):
            assert response.status == 200
            assert await response.json() == {
                "result": {
                    "data": {
                        "publishableKey": "pk_test_local_emulator",
                        "merchantDisplayName": "Votre Boutique",
                        "merchantCountryCode": "FR",
                        "testMode": True,
                    }
                }
            }
    finally:
        code, out = stop(process)
    assert code == 0
    events = [json.loads(line)["event"] for line in out.splitlines() if line.startswith("{")]
    assert events[-1] == "gateway_stopped"
    assert "payment_request_completed" in events


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


def test_production_refuses_test_keys_and_names_the_variable(
    clean_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**clean_env, "NODE_ENV": "production", "STRIPE_PUBLISHABLE_KEY": "pk_live_abc"}
    result = subprocess.run(
        [str(GATEWAY), "serve"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert "STRIPE_SECRET_KEY must be a live key" in result.stderr
    assert "STRIPE_PUBLISHABLE_KEY" not in result.stderr
