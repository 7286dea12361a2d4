"""The local Stripe emulator (`python -m emulator`, GPL-3.0-or-later, test-only) as a subprocess for tests.

The emulator runs in its own process, so this module never imports it (nor localstripe): tests and the gateway
under test reach it over HTTP only, at `api_base`, exactly as they would reach Stripe. Fixtures (registered in
`tests/conftest.py`): `stripe_emulator` (one per session) and `fresh_stripe_emulator` (reset before the test).
"""

from __future__ import annotations

import json
import selectors
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import pytest

__all__ = ["REPO_ROOT", "StripeEmulator", "fresh_stripe_emulator", "start_emulator", "stripe_emulator"]

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The checkout: `python -m emulator` runs from there."""


class StripeEmulator:
    """One emulator process: start, stop, restart on the same port, and its test-only `/_config` switches."""

    def __init__(
        self,
        *,
        secret_key: str = "sk_test_emulator",
        publishable_key: str = "pk_test_emulator",
        webhook_secret: str = "whsec_test_emulator",
        start_timeout: float = 20.0,
    ) -> None:
        self.secret_key = secret_key
        """Any `sk_test_…` key of 6 characters or more is accepted."""
        self.publishable_key = publishable_key
        self.webhook_secret = webhook_secret
        """The default secret of `register_webhook`."""
        self.start_timeout = start_timeout
        self._process: subprocess.Popen[str] | None = None
        self._port: int | None = None
        self._log: IO[bytes] = tempfile.NamedTemporaryFile(prefix="stripe-emulator-", suffix=".log")  # noqa: SIM115
        self._webhooks: dict[str, dict[str, Any]] = {}

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the Stripe emulator was never started")
        return self._port

    @property
    def api_base(self) -> str:
        """`http://127.0.0.1:<port>`, for `StripeClient(base_addresses={"api": …})`; stable across restarts."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def log_path(self) -> str:
        """The emulator's stderr (access log, webhook deliveries, tracebacks), across restarts."""
        return self._log.name

    def start(self) -> None:
        """Start the emulator (again on its previous port after `stop()`) and wait until it accepts connections.

        Webhooks registered through `register_webhook` are registered again, since a restart starts empty.
        """
        if self.is_running:
            return
        command = [sys.executable, "-m", "emulator", "--host", "127.0.0.1", "--port", str(self._port or 0)]
        self._process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        self._port = self._wait_for_port(self._process)
        for webhook_id, registration in self._webhooks.items():
            self._config("POST", f"/_config/webhooks/{webhook_id}", registration)

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL): Stripe is now unreachable at `api_base` until `start()`."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()

    def close(self) -> None:
        """Stop for good and delete the log."""
        self.stop()
        self._log.close()

    def reset(self) -> None:
        """Forget every object, idempotency key, domain and ephemeral key, and drop undelivered events.

        Registered webhooks stay.
        """
        self._config("DELETE", "/_config/data")

    def register_webhook(
        self, webhook_id: str, url: str, secret: str | None = None, events: list[str] | None = None
    ) -> None:
        """Deliver events (all, or those listed) to `url`, signed with `secret` (default `webhook_secret`)."""
        registration: dict[str, Any] = {"url": url, "secret": secret or self.webhook_secret}
        if events is not None:
            registration["events"] = events
        self._config("POST", f"/_config/webhooks/{webhook_id}", registration)
        self._webhooks[webhook_id] = registration

    def unregister_webhook(self, webhook_id: str) -> None:
        self._webhooks.pop(webhook_id, None)
        self._config("DELETE", f"/_config/webhooks/{webhook_id}")

    def set_domain_wallets(self, domain: str, error_message: str | None = None, **statuses: str) -> None:
        """Switch wallets of a registered PaymentMethodDomain (by id or name): `apple_pay="inactive"`, …"""
        body: dict[str, Any] = dict(statuses)
        if error_message is not None:
            body["error_message"] = error_message
        self._config("POST", f"/_config/payment_method_domains/{domain}", body)

    def _wait_for_port(self, process: subprocess.Popen[str]) -> int:
        """Read the emulator's one stdout line, `listening <port>`, within `start_timeout`."""
        assert process.stdout is not None
        deadline = time.monotonic() + self.start_timeout
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            while (remaining := deadline - time.monotonic()) > 0:
                if not selector.select(remaining):
                    continue
                line = process.stdout.readline()
                if line.startswith("listening "):
                    return int(line.split()[1])
                if not line:
                    break  # exited before listening
        self.stop()
        self._log.flush()
        log = Path(self.log_path).read_text(errors="replace")[-4000:]
        raise RuntimeError(f"the Stripe emulator did not start within {self.start_timeout} s:\n{log}")

    def _config(self, method: str, path: str, body: dict[str, Any] | None = None) -> None:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.api_base + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()


@contextmanager
def start_emulator(**options: Any) -> Iterator[StripeEmulator]:
    """A running emulator for the duration of the block (keyword options as `StripeEmulator`'s)."""
    emulator = StripeEmulator(**options)
    try:
        emulator.start()
        yield emulator
    finally:
        emulator.close()


@pytest.fixture(scope="session")
def stripe_emulator() -> Iterator[StripeEmulator]:
    """One emulator process for the whole session (it starts in a fraction of a second)."""
    with start_emulator() as emulator:
        yield emulator


@pytest.fixture
def fresh_stripe_emulator(stripe_emulator: StripeEmulator) -> StripeEmulator:
    """The session's emulator, running (restarted if a test stopped it) and emptied."""
    stripe_emulator.start()
    stripe_emulator.reset()
    return stripe_emulator
