"""The local Stripe emulator as a child process, for development without Stripe keys.

`gateway serve` with no `STRIPE_SECRET_KEY` (never in production) starts `python -m emulator` (the project's
`emulator/` folder: localstripe, GPL-3.0-or-later, plus our patches) on a free 127.0.0.1 port, points the gateway
at it with test keys, registers the gateway's webhook URL with it, and stops it on exit. The gateway never
imports the emulator: it only runs it, and `data/emulator.json` tells the development commands where it is.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import threading
from pathlib import Path
from typing import Final

import msgspec
from loguru import logger

from gateway.settings import ConfigurationError, Settings
from gateway.webhooks.signature import parse_webhook_secrets

__all__ = ["EMULATOR_STATE", "EmulatorState", "LocalStripe", "read_emulator_state"]

PROJECT_ROOT: Final = Path(__file__).resolve().parents[1]
EMULATOR_STATE: Final = Path("data/emulator.json")
START_TIMEOUT: Final = 30.0
WEBHOOK_PATH: Final = "/webhooks/stripe"


class EmulatorState(msgspec.Struct, frozen=True):
    """Where the running emulator is, for commands run beside `gateway serve` (`gateway dev pay`)."""

    api_base: str
    secret_key: str
    publishable_key: str
    webhook_secret: str
    pid: int

    def configure(self, settings: Settings) -> Settings:
        """`settings` pointed at this emulator, with its test keys."""
        return msgspec.structs.replace(
            settings,
            stripe_secret_key=self.secret_key,
            stripe_publishable_key=self.publishable_key,
            stripe_webhook_secret=self.webhook_secret,
            stripe_api_base=self.api_base,
            stripe_max_network_retries=0,  # its 500s are bugs, not outages: retrying them only slows tests down
        )


class LocalStripe:
    """A running emulator process."""

    def __init__(self, process: subprocess.Popen[str], state: EmulatorState) -> None:
        self._process = process
        self.state = state

    @classmethod
    def start(cls, settings: Settings, state_file: Path = EMULATOR_STATE) -> LocalStripe:
        if not (PROJECT_ROOT / "emulator" / "__main__.py").is_file():
            raise ConfigurationError(
                "STRIPE_SECRET_KEY is not set and the local Stripe emulator is not in this installation "
                "(it ships with the source checkout: run ./scripts/setup there), so there is no Stripe to call"
            )
        configured = parse_webhook_secrets(settings.stripe_webhook_secret)
        # The emulator signs with one secret: the first, the one a rotation rolls to.
        webhook_secret = configured[0] if configured else f"whsec_emulator_{secrets.token_hex(16)}"
        command = [
            sys.executable,
            "-m",
            "emulator",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--webhook-url",
            f"{settings.public_url}{WEBHOOK_PATH}",
            "--webhook-secret",
            webhook_secret,
        ]
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module, no shell
            command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        port = _read_port(process)
        state = EmulatorState(
            api_base=f"http://127.0.0.1:{port}",
            secret_key=f"sk_test_emulator_{secrets.token_hex(8)}",
            publishable_key="pk_test_emulator",
            webhook_secret=webhook_secret,
            pid=process.pid,
        )
        state_file.parent.mkdir(parents=True, exist_ok=True)
        state_file.write_bytes(msgspec.json.encode(state))
        logger.bind(apiBase=state.api_base, webhookUrl=f"{settings.public_url}{WEBHOOK_PATH}").warning(
            "stripe_emulator_started"
        )
        return cls(process, state)

    def configure(self, settings: Settings) -> Settings:
        return self.state.configure(settings)

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()
        try:
            if read_emulator_state() == self.state:
                EMULATOR_STATE.unlink()
        except (OSError, ConfigurationError):
            pass
        logger.info("stripe_emulator_stopped")


def _read_port(process: subprocess.Popen[str]) -> int:
    """The port from the emulator's `listening <port>` line; a timer kills a process that never says it."""
    assert process.stdout is not None
    timer = threading.Timer(START_TIMEOUT, process.kill)
    timer.start()
    try:
        line = process.stdout.readline()
    finally:
        timer.cancel()
    word, _, port = line.strip().partition(" ")
    if word != "listening" or not port.isdigit():
        process.kill()
        process.wait()
        raise ConfigurationError(
            f"the local Stripe emulator did not start (exit code {process.poll()}); "
            "run `.venv/bin/python -m emulator --port 0` to see why"
        )
    return int(port)


def read_emulator_state(path: Path = EMULATOR_STATE) -> EmulatorState:
    """The emulator `gateway serve` started, if it is still running."""
    try:
        state = msgspec.json.decode(path.read_bytes(), type=EmulatorState)
    except (OSError, msgspec.DecodeError):
        raise ConfigurationError(
            "no local Stripe emulator is running: start `gateway serve` without STRIPE_SECRET_KEY first"
        ) from None
    try:
        os.kill(state.pid, 0)
    except OSError:
        raise ConfigurationError(
            "the local Stripe emulator recorded in data/emulator.json has stopped"
        ) from None
    return state
