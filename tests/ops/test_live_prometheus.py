"""The alerting rules of ops/prometheus/alerts.yml, loaded by a real Prometheus that scrapes a real gateway.

promtool's unit tests (test_prometheus_rules.py) feed the rules made-up series; here Prometheus (Debian's
`prometheus` package, installed by `bash scripts/setup`) scrapes `GET /metrics/payments/prometheus` of the
production app every second and evaluates the rules every second, so the metric names, labels and values the
gateway really exposes are what the rules see.

Two waves of traffic, because `rate()` only sees what a counter gained between two samples: the gateway
exports an error code's series from its first error on (the OK series from the start, at 0), so the first
wave's failures are that series' starting value. Right after the second wave's scrape, rate()'s extrapolation
over a two-sample series happens to give them back (ratio 6/12 = 0.5); as samples accumulate it drifts to 3/9,
the first wave's failures forgotten. Either way far above the 5 % threshold.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest

from gateway.settings import Settings
from tests.ops.test_prometheus_rules import ALERTS, JOB
from tests.support.server import RunningGateway, running_gateway
from tests.support.tokens import TEST_JWT_SECRET, bearer_headers

T = TypeVar("T")

METRICS_PATH = "/metrics/payments/prometheus"
DEADLINE_SECONDS = 60.0
"""For the whole test: Prometheus's start, the scrapes and the rule evaluations. About 9 s when all is well,
5.5 of them before the first scrape: Prometheus hands discovered targets (static ones too) to its scrape
manager every 5 s."""
POLL_SECONDS = 0.1
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=2)
"""Each request to Prometheus: a listener that never answers must not hold a poll past the deadline."""
STOP_SECONDS = 10.0
START_ATTEMPTS = 3
"""A free port is picked, released and given to Prometheus: another process may take it in between."""
LOG_TAIL_LINES = 40

FAILURE_ALERT = "PaymentFailureRateHigh"
QUIET_ALERT = "StripeConsecutiveErrors"
"""This traffic calls no Stripe API. The app's health watch does, at its start and after 60 s without a Stripe
call; with `Settings()` and no emulator running that call fails, so the gauge reads 1 here: below 5."""
QUIET_GAUGE = "gateway_stripe_consecutive_errors"
QUIET_LIMIT = 5
FAILURE_RATIO = "gateway:payment_failure_ratio:1h"
FAILURE_THRESHOLD = 0.05

OK_CALL = "/trpc/stripe.getConfig"
"""A query without input that answers OK without Stripe or a store."""
BAD_CALL = "/trpc/stripe.getPaymentStatus?input=%7B%7D"
"""`{}` misses orderId: BAD_REQUEST by validation, before Stripe or the store (made as a signed-in user: without
a token it would be UNAUTHORIZED, checked before the input)."""
CALLER = bearer_headers("alice")
CALLS_PER_WAVE = 3


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _config(gateway: RunningGateway) -> str:
    # JSON is YAML: no quoting to get wrong.
    target = gateway.base_url.removeprefix("http://")
    return (
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f'rule_files: ["{ALERTS}"]\n'
        "scrape_configs:\n"
        f'  - {{job_name: "{JOB}", metrics_path: "{METRICS_PATH}", '
        f'static_configs: [{{targets: ["{target}"]}}]}}\n'
    )


@dataclass
class LivePrometheus:
    base_url: str
    process: asyncio.subprocess.Process
    log: Path
    http: aiohttp.ClientSession
    deadline: float
    """`loop.time()` after which every wait fails."""

    def log_tail(self) -> str:
        lines = self.log.read_text(encoding="utf-8", errors="replace").splitlines()
        return "\n".join(lines[-LOG_TAIL_LINES:])

    def explain(self, message: str) -> str:
        return f"{message}\n--- last lines of Prometheus's stderr ---\n{self.log_tail()}"

    async def api(self, path: str, **params: str) -> Any:
        """The `data` of a Prometheus HTTP API answer."""
        async with self.http.get(self.base_url + path, params=params, timeout=REQUEST_TIMEOUT) as response:
            body: dict[str, Any] = await response.json()
        assert body.get("status") == "success", self.explain(f"GET {path} {params}: {body}")
        return body["data"]

    async def wait_for(self, what: str, probe: Callable[[], Awaitable[T | None]]) -> T:
        """`probe()`'s first answer other than None, polled until the test's deadline."""
        loop = asyncio.get_running_loop()
        last: object = None
        while True:
            if self.process.returncode is not None:
                pytest.fail(self.explain(f"Prometheus exited ({self.process.returncode}) waiting for {what}"))
            try:
                found = await probe()
            except (aiohttp.ClientError, TimeoutError, AssertionError) as error:
                found, last = None, error
            if found is not None:
                return found
            if loop.time() > self.deadline:
                pytest.fail(self.explain(f"timed out waiting for {what}; last: {last!r}"))
            await asyncio.sleep(POLL_SECONDS)

    async def ready(self) -> bool | None:
        async with self.http.get(self.base_url + "/-/ready", timeout=REQUEST_TIMEOUT) as response:
            return True if response.status == 200 else None

    async def query(self, promql: str) -> list[dict[str, Any]]:
        data = await self.api("/api/v1/query", query=promql)
        result: list[dict[str, Any]] = data["result"]
        return result

    async def rules(self) -> dict[str, dict[str, Any]]:
        """Every loaded rule by name (alert or record), with the file of its group."""
        groups = (await self.api("/api/v1/rules"))["groups"]
        return {rule["name"]: {**rule, "file": group["file"]} for group in groups for rule in group["rules"]}


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    process.terminate()
    try:
        await asyncio.wait_for(process.wait(), STOP_SECONDS)
    except TimeoutError:
        process.kill()
        await process.wait()


def _prometheus_executable() -> str:
    executable = shutil.which("prometheus")
    if executable is None:
        pytest.fail(
            "the prometheus server is not installed: run `bash scripts/setup` "
            "(it installs Debian's prometheus package)",
            pytrace=False,
        )
    return executable


@asynccontextmanager
async def live_prometheus(
    executable: str, gateway: RunningGateway, http: aiohttp.ClientSession, tmp_path: Path
) -> AsyncIterator[LivePrometheus]:
    """Prometheus scraping `gateway`, ready (its rules loaded); stopped and waited for on the way out."""
    config = tmp_path / "prometheus.yml"
    config.write_text(_config(gateway), encoding="utf-8")
    deadline = asyncio.get_running_loop().time() + DEADLINE_SECONDS
    for attempt in range(1, START_ATTEMPTS + 1):
        port = _free_port()
        log = tmp_path / f"prometheus-{attempt}.log"
        with log.open("wb") as stderr:
            process = await asyncio.create_subprocess_exec(
                executable,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / f'data-{attempt}'}",
                f"--web.listen-address=127.0.0.1:{port}",
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=stderr,
            )
        try:
            live = LivePrometheus(f"http://127.0.0.1:{port}", process, log, http, deadline)
            try:
                await live.wait_for("Prometheus to be ready (/-/ready)", live.ready)
            except pytest.fail.Exception:
                if attempt < START_ATTEMPTS and "address already in use" in live.log_tail():
                    continue  # after the `finally`: this one has exited, the next gets another port
                raise
            yield live
            return
        finally:
            await _stop(process)


def _state(rule: dict[str, Any]) -> str:
    state: str = rule["state"]
    return state


async def _calls(http: aiohttp.ClientSession, gateway: RunningGateway, path: str, status: int) -> None:
    for _ in range(CALLS_PER_WAVE):
        async with http.get(gateway.base_url + path, headers=CALLER) as response:
            assert response.status == status, (path, response.status, await response.text())


async def _wave(http: aiohttp.ClientSession, gateway: RunningGateway) -> None:
    await _calls(http, gateway, OK_CALL, 200)
    await _calls(http, gateway, BAD_CALL, 400)


async def test_a_live_prometheus_alerts_on_the_gateways_payment_failures(
    http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    executable = _prometheus_executable()
    async with (
        # the production router: stripe.* without Stripe
        running_gateway(Settings(jwt_secret=TEST_JWT_SECRET)) as gateway,
        live_prometheus(executable, gateway, http, tmp_path) as prometheus,
    ):
        await _check_the_rules(prometheus, gateway, http)


async def _check_the_rules(
    prometheus: LivePrometheus, gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    rules = await prometheus.rules()
    assert {rules[FAILURE_ALERT]["file"], rules[FAILURE_RATIO]["file"]} == {str(ALERTS)}, rules[FAILURE_ALERT]

    async def scraped() -> dict[str, Any] | None:
        targets = (await prometheus.api("/api/v1/targets", state="active"))["activeTargets"]
        ours = [target for target in targets if target["labels"]["job"] == JOB]
        if len(ours) != 1:
            return None
        [target] = ours
        assert target["scrapeUrl"] == gateway.base_url + METRICS_PATH, target
        scraped_once = target["health"] == "up" and not target["lastScrape"].startswith("0001-")
        return target if scraped_once else None

    await prometheus.wait_for(f"the {JOB} target to be up and scraped", scraped)

    await _wave(http, gateway)

    def seen(count: int) -> Callable[[], Awaitable[bool | None]]:
        async def probe() -> bool | None:
            series = await prometheus.query(
                f'sum by (code) (gateway_procedure_calls_total{{job="{JOB}", procedure=~"stripe\\\\..+"}})'
            )
            counts = {sample["metric"]["code"]: float(sample["value"][1]) for sample in series}
            return True if counts.get("OK", 0) >= count and counts.get("BAD_REQUEST", 0) >= count else None

        return probe

    await prometheus.wait_for("a scrape of the first wave's OK and BAD_REQUEST calls", seen(CALLS_PER_WAVE))
    await _wave(http, gateway)
    await prometheus.wait_for("a scrape of the second wave", seen(2 * CALLS_PER_WAVE))

    async def alerting() -> dict[str, dict[str, Any]] | None:
        rules = await prometheus.rules()
        return rules if _state(rules[FAILURE_ALERT]) in {"pending", "firing"} else None

    rules = await prometheus.wait_for(f"{FAILURE_ALERT} to be pending or firing", alerting)

    assert _state(rules[FAILURE_ALERT]) in {"pending", "firing"}, prometheus.explain(
        str(rules[FAILURE_ALERT])
    )
    assert _state(rules[QUIET_ALERT]) == "inactive", prometheus.explain(str(rules[QUIET_ALERT]))
    [gauge] = await prometheus.query(f'{QUIET_GAUGE}{{job="{JOB}"}}')
    assert float(gauge["value"][1]) < QUIET_LIMIT, prometheus.explain(f"{QUIET_GAUGE}: {gauge}")
    errors = {name: rule["lastError"] for name, rule in rules.items() if rule.get("lastError")}
    assert not errors, prometheus.explain(f"rules failing to evaluate: {errors}")
    [ratio] = await prometheus.query(FAILURE_RATIO)
    assert float(ratio["value"][1]) > FAILURE_THRESHOLD, prometheus.explain(f"{FAILURE_RATIO}: {ratio}")
