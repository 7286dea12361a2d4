"""Request ids and the seed's JSON log lines, through a real server."""

from __future__ import annotations

import asyncio
import io
import json
import re
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from loguru import logger

from gateway.http.app import REQUEST_LOG
from gateway.logs import BufferedLog, configure_logging, now_iso
from gateway.settings import Settings
from tests.support.server import RunningGateway, running_gateway

REQUEST_ID = re.compile(r"^pay_\d{13}_[0-9a-z]{9}$")
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    """Everything logged during the test, as production writes it (JSON lines)."""
    buffer = io.StringIO()
    configure_logging("INFO", stream=buffer)
    yield buffer
    configure_logging("DEBUG")


def lines(output: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.getvalue().splitlines()]


async def get(http: aiohttp.ClientSession, url: str) -> tuple[int, str, bytes]:
    async with http.get(url) as response:
        return response.status, response.headers["x-request-id"], await response.read()


async def test_a_payment_request_logs_the_seed_fields(
    http: aiohttp.ClientSession, log_output: io.StringIO
) -> None:
    async with running_gateway(Settings()) as gateway:  # the production router: stripe.getConfig
        status, request_id, body = await get(http, gateway.trpc_url + "/stripe.getConfig")
        gateway.app[REQUEST_LOG].flush()

    assert status == 200
    assert REQUEST_ID.match(request_id)
    [started, line] = [line for line in lines(log_output) if line.get("requestId") == request_id]
    assert TIMESTAMP.match(started.pop("timestamp"))
    assert started == {
        "level": "INFO",
        "event": "payment_request_started",
        "requestId": request_id,
        "path": "/trpc/stripe.getConfig",
        "method": "GET",
    }
    assert TIMESTAMP.match(line.pop("timestamp"))
    assert re.match(r"^\d+\.\d{3}$", line.pop("durationSeconds"))
    assert line == {
        "level": "INFO",
        "event": "payment_request_completed",
        "requestId": request_id,
        "statusCode": 200,
        "path": "/trpc/stripe.getConfig",
        "method": "GET",
        "responseSize": len(body),
        "success": True,
    }


async def test_failures_are_payment_request_errors_and_are_not_held_back(
    gateway: RunningGateway, http: aiohttp.ClientSession, log_output: io.StringIO
) -> None:
    status, request_id, _ = await get(http, gateway.trpc_url + "/stripe.nope")

    assert status == 404
    # No flush: warnings reach the sinks at once, so `grep payment_request_error` sees them immediately.
    [line] = [
        line
        for line in lines(log_output)
        if line.get("requestId") == request_id and line["event"] != "payment_request_started"
    ]
    assert (line["event"], line["level"], line["success"], line["statusCode"]) == (
        "payment_request_error",
        "WARNING",
        False,
        404,
    )


async def test_an_unexpected_exception_is_logged_with_the_request_id(
    gateway: RunningGateway, http: aiohttp.ClientSession, log_output: io.StringIO
) -> None:
    status, request_id, _ = await get(http, gateway.trpc_url + "/boom")

    assert status == 500
    [failure] = [line for line in lines(log_output) if line["event"] == "procedure_exception"]
    assert failure["requestId"] == request_id
    assert failure["procedure"] == "boom"
    assert failure["error"] == "RuntimeError: kaboom"
    assert "fixture_router.py" in failure["traceback"]
    [outcome] = [line for line in lines(log_output) if line["event"] == "http_request_error"]
    assert outcome["requestId"] == request_id


async def test_buffered_lines_reach_the_sinks_without_a_flush(log_output: io.StringIO) -> None:
    arrived = asyncio.Event()
    sink_id = logger.add(lambda _message: arrived.set(), format="{message}")
    try:
        log = BufferedLog("INFO", max_delay=0.01)
        log.emit("INFO", {"timestamp": now_iso(), "level": "INFO", "event": "first", "n": 1})
        log.emit("INFO", {"timestamp": now_iso(), "level": "INFO", "event": "second", "n": 2})
        assert log_output.getvalue() == ""  # held for a batch
        await asyncio.wait_for(arrived.wait(), 5)
    finally:
        logger.remove(sink_id)
    assert [(line["event"], line["n"]) for line in lines(log_output)] == [("first", 1), ("second", 2)]


def test_lines_below_the_level_are_dropped(log_output: io.StringIO) -> None:
    log = BufferedLog("WARNING")
    log.emit("INFO", {"event": "quiet"})
    log.emit("ERROR", {"event": "loud"})
    assert [line["event"] for line in lines(log_output)] == ["loud"]


def test_a_sink_above_info_still_gets_the_warnings() -> None:
    buffer = io.StringIO()
    configure_logging("WARNING", stream=buffer)
    try:
        log = BufferedLog("WARNING")
        log.emit("WARNING", {"event": "payment_request_error"})
    finally:
        configure_logging("DEBUG")
    assert [line["event"] for line in lines(buffer)] == ["payment_request_error"]


async def test_a_stream_whose_client_leaves_ends_quietly(
    gateway: RunningGateway, http: aiohttp.ClientSession, log_output: io.StringIO
) -> None:
    gone = asyncio.Event()
    sink_id = logger.add(
        lambda message: gone.set() if "stream_client_gone" in message else None, format="{message}"
    )
    try:
        url = gateway.trpc_url + '/noInput,slow?batch=1&input={"1":{"ms":200}}'
        response = await http.get(url, headers={"trpc-accept": "application/jsonl"})
        await response.content.readline()  # the head: the stream has started
        response.close()  # leave before the slow call's line is written
        await asyncio.wait_for(gone.wait(), 10)
    finally:
        logger.remove(sink_id)
    events = [line["event"] for line in lines(log_output)]
    assert "stream_exception" not in events
    assert "request_exception" not in events
    status, _, _ = await get(http, gateway.trpc_url + "/noInput")
    assert status == 200


async def test_an_unknown_path_still_gets_an_id_and_a_log_line(
    gateway: RunningGateway, http: aiohttp.ClientSession, log_output: io.StringIO
) -> None:
    status, request_id, _ = await get(http, gateway.base_url + "/nowhere")
    assert status == 404
    assert REQUEST_ID.match(request_id)
    [line] = [line for line in lines(log_output) if line.get("requestId") == request_id]
    assert (line["event"], line["path"], line["statusCode"]) == ("http_request_error", "/nowhere", 404)
