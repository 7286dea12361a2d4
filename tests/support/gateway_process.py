"""`gateway serve` as a real process on a free 127.0.0.1 port, as an operator's command sees a deployment.

With an environment free of the gateway's variables and an empty working directory (no `.env`), the gateway runs
in test mode on its embedded defaults: a SQLite file under the directory and the local Stripe emulator, which it
starts itself and describes in `data/emulator.json` (and, with no JWT_SECRET, development secrets it generates in
`data/dev-secrets.json`). `signed_in_env()` gives it the tests' JWT_SECRET instead, so that `tests.support.tokens`
signs tokens it accepts. Ready once `GET /metrics/payments/health` answers 200
(polled until a deadline); stopped with SIGTERM on the way out, as an operator or a supervisor would.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import msgspec
import pytest

from tests.support.stripe_emulator import StripeEmulator
from tests.support.tokens import TEST_JWT_SECRET, TEST_QR_SECRET

__all__ = [
    "GATEWAY",
    "REPO",
    "EmulatorInfo",
    "GatewayProcess",
    "clean_env",
    "free_port",
    "gateway_process",
    "replica_env",
    "signed_in_env",
]

REPO: Final = Path(__file__).resolve().parents[2]
GATEWAY: Final = Path(sys.executable).parent / "gateway"
"""The `gateway` command of this virtualenv."""
READY_SECONDS: Final = 30.0
POLL_SECONDS: Final = 0.05
PROBE_TIMEOUT: Final = 2.0
STOP_SECONDS: Final = 20.0
START_ATTEMPTS: Final = 3
"""A free port is picked, released and given to the gateway: another process may take it in between."""
LOG_TAIL_LINES: Final = 40
HEALTH_PATH: Final = "/metrics/payments/health"


def free_port() -> int:
    """A port nothing listens on right now (and, once this returns, nothing is bound to)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


UNPREFIXED_VARIABLES: Final = ("JWT_SECRET", "QR_SECRET", "DATABASE_URL")
"""The gateway's variables without a GATEWAY_/STRIPE_ prefix."""


def clean_env() -> dict[str, str]:
    """This environment without the gateway's variables (so: test mode, the emulator, default settings)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GATEWAY_", "STRIPE_", "NODE_ENV")) and k not in UNPREFIXED_VARIABLES
    }
    env["PYTHONPATH"] = str(REPO)
    return env


def signed_in_env(**variables: str) -> dict[str, str]:
    """`clean_env()` with the tests' JWT_SECRET and QR_SECRET (tokens from `tests.support.tokens` are accepted),
    and `variables`."""
    return {**clean_env(), "JWT_SECRET": TEST_JWT_SECRET, "QR_SECRET": TEST_QR_SECRET, **variables}


def replica_env(database_url: str, emulator: StripeEmulator) -> dict[str, str]:
    """`signed_in_env()` for a replica behind a load balancer on this host, as tests/e2e/test_replicas.py and
    bench/replicas.py run them: the store at `database_url`, `emulator` as Stripe (no emulator of its own),
    127.0.0.1 trusted as its proxy, and the rate limits off (one test client makes every call)."""
    return signed_in_env(
        DATABASE_URL=database_url,
        STRIPE_SECRET_KEY=emulator.secret_key,
        STRIPE_PUBLISHABLE_KEY=emulator.publishable_key,
        STRIPE_WEBHOOK_SECRET=emulator.webhook_secret,
        STRIPE_API_BASE=emulator.api_base,
        STRIPE_MAX_NETWORK_RETRIES="0",
        GATEWAY_TRUSTED_PROXIES="127.0.0.1/32",
        GATEWAY_RATE_LIMIT_USER="0",
        GATEWAY_RATE_LIMIT_CLIENT="0",
    )


class EmulatorInfo(msgspec.Struct, frozen=True):
    """`data/emulator.json` as `gateway serve` writes it (the fields tests need)."""

    api_base: str
    secret_key: str
    pid: int


@dataclass(frozen=True)
class GatewayProcess:
    base_url: str
    """`http://127.0.0.1:<port>`"""
    directory: Path
    """Its working directory: `data/` (the store, emulator.json) and the log file are there."""
    process: subprocess.Popen[bytes]
    log: Path
    """Its stdout and stderr (JSON log lines)."""

    def log_tail(self) -> str:
        lines = self.log.read_text(encoding="utf-8", errors="replace").splitlines()
        return "\n".join(lines[-LOG_TAIL_LINES:])

    def explain(self, message: str) -> str:
        return f"{message}\n--- last lines of the gateway's log ({self.log}) ---\n{self.log_tail()}"

    def emulator(self) -> EmulatorInfo:
        """Where the Stripe emulator it started is, and its secret key."""
        return msgspec.json.decode(
            (self.directory / "data" / "emulator.json").read_bytes(), type=EmulatorInfo
        )


def _health_status(url: str) -> int | None:
    """The health endpoint's HTTP status, or None when nothing answers (yet)."""
    try:
        with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, OSError):
        return None


def _wait_until_healthy(gateway: GatewayProcess) -> None:
    """Polls the health endpoint until it answers 200; fails (with the log) on exit or at the deadline."""
    deadline = time.monotonic() + READY_SECONDS
    last: int | None = None
    while True:
        if gateway.process.poll() is not None:
            raise _Exited(
                gateway.explain(f"`gateway serve` exited ({gateway.process.returncode}) before ready")
            )
        last = _health_status(gateway.base_url + HEALTH_PATH)
        if last == 200:
            return
        if time.monotonic() > deadline:
            pytest.fail(gateway.explain(f"{HEALTH_PATH} never answered 200 (last: {last})"))
        time.sleep(POLL_SECONDS)  # the poll interval, bounded by the deadline above


class _Exited(Exception):
    pass


def _stop(gateway: GatewayProcess) -> None:
    """SIGTERM and wait; kill if it does not stop, and then its emulator too."""
    process = gateway.process
    emulator_pid = None
    with contextlib.suppress(OSError, msgspec.DecodeError, msgspec.ValidationError):
        emulator_pid = gateway.emulator().pid
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.returncode != 0 and emulator_pid is not None:
        # Killed, or crashed: its emulator was not stopped (a clean stop stops it, and its pid may be reused).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(emulator_pid, signal.SIGTERM)


@contextlib.contextmanager
def gateway_process(directory: Path, env: dict[str, str] | None = None) -> Iterator[GatewayProcess]:
    """`gateway serve --port <free>` run in `directory` (default environment: `clean_env()`), healthy; stopped
    (SIGTERM, waited for) on the way out."""
    for attempt in range(1, START_ATTEMPTS + 1):
        port = free_port()
        log = directory / f"gateway-{attempt}.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                [str(GATEWAY), "serve", "--port", str(port)],
                cwd=directory,
                env=env if env is not None else clean_env(),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        gateway = GatewayProcess(f"http://127.0.0.1:{port}", directory, process, log)
        try:
            try:
                _wait_until_healthy(gateway)
            except _Exited as exited:
                if attempt < START_ATTEMPTS and "address already in use" in gateway.log_tail().lower():
                    continue  # after the `finally`: the next attempt gets another port
                pytest.fail(str(exited))
            yield gateway
            return
        finally:
            _stop(gateway)
