"""Security headers on every response: routes, errors, 404s, streams, metrics, aiohttp's own 400; HSTS over https."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import aiohttp
import pytest
from multidict import CIMultiDictProxy

from gateway.settings import Settings
from tests.support.fixture_router import fixture_router
from tests.support.server import RunningGateway, running_gateway

SECURITY = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
}


def assert_secured(headers: Mapping[str, str] | CIMultiDictProxy[str], *, no_store: bool = True) -> None:
    for name, value in SECURITY.items():
        assert headers.get(name) == value, name
        if isinstance(headers, CIMultiDictProxy):
            assert headers.getall(name) == [value], name  # once: added by one hand only
    if no_store:
        assert headers.get("cache-control") == "no-store"
    assert "strict-transport-security" not in headers  # plain http


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        pytest.param("GET", "/trpc/greet", 200, id="query"),
        pytest.param("GET", "/trpc/boom", 500, id="procedure-error"),
        pytest.param("GET", "/trpc/nope", 404, id="unknown-procedure"),
        pytest.param("OPTIONS", "/trpc/greet", 415, id="options-cors-off"),
        pytest.param("POST", "/rpc", 415, id="rpc-without-content-type"),
        pytest.param("POST", "/webhooks/stripe", 503, id="webhook-not-configured"),
        pytest.param("GET", "/nothing/here", 404, id="unknown-path"),
    ],
)
async def test_every_answer_carries_the_security_headers(
    gateway: RunningGateway, http: aiohttp.ClientSession, method: str, path: str, status: int
) -> None:
    async with http.request(method, gateway.base_url + path) as response:
        assert response.status == status
        assert_secured(response.headers)
        assert response.headers["x-request-id"]


async def test_a_streamed_jsonl_answer_carries_them_too(
    gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    url = gateway.trpc_url + "/greet,noInput?batch=1&input=%7B%7D"
    async with http.get(url, headers={"trpc-accept": "application/jsonl"}) as response:
        assert response.status == 200
        assert response.headers.get("transfer-encoding") == "chunked"  # really the streamed path
        assert_secured(response.headers)
        assert len((await response.read()).splitlines()) >= 3


async def test_metrics_and_health_are_secured_and_not_cached(
    gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    for path in ("/metrics/payments", "/metrics/payments/health", "/metrics/payments/prometheus"):
        async with http.get(gateway.base_url + path) as response:
            assert response.status in (200, 503)  # health: no store behind the fixture router, unhealthy
            assert_secured(response.headers)
            assert response.headers.getall("cache-control") == ["no-store"]  # once, not twice


async def test_aiohttp_own_400_for_a_malformed_request_line_is_secured(gateway: RunningGateway) -> None:
    host, port = gateway.base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(b"GET /trpc/greet HTTP/1.1 extra\r\nHost: x\r\n\r\n")
        head = (await asyncio.wait_for(reader.read(65536), 5)).decode("latin-1").lower()
    finally:
        writer.close()
    assert head.startswith("http/1.0 400 bad request")
    for name, value in SECURITY.items():
        assert f"{name}: {value.lower()}\r\n" in head


async def _raw_exchange(gateway: RunningGateway, head: bytes, body: bytes) -> tuple[str, str]:
    """Send `head`, read aiohttp's interim answer to its `Expect` header, send `body` if that was a 100, and return
    (interim answer, final answer) as lowercase text."""
    host, port = gateway.base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(head)
        interim = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)).decode("latin-1").lower()
        if not interim.startswith("http/1.1 100"):
            return interim, ""
        writer.write(body)
        final = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)).decode("latin-1").lower()
    finally:
        writer.close()
    return interim, final


async def test_a_call_sent_with_expect_100_continue_is_answered_and_secured_once(
    gateway: RunningGateway,
) -> None:
    """Such a request takes the router's path (its expect handler sends the 100), not the front door's: the answer
    is the same, with each header once."""
    body = b'{"a":1,"b":2}'
    head = (
        b"POST /trpc/add HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body)
    )
    interim, final = await _raw_exchange(gateway, head, body)
    assert interim.startswith("http/1.1 100 continue")
    assert final.startswith("http/1.1 200 ok")
    for name, value in SECURITY.items():
        assert final.count(f"\r\n{name}: ") == 1, name
        assert f"\r\n{name}: {value.lower()}\r\n" in final
    assert final.count("\r\nx-request-id: pay_") == 1


async def test_aiohttp_own_417_for_an_unknown_expectation_is_secured(gateway: RunningGateway) -> None:
    head = b"POST /trpc/add HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\nContent-Length: 2\r\n\r\n"
    interim, _ = await _raw_exchange(gateway, head, b"{}")
    assert interim.startswith("http/1.1 417 expectation failed")
    for name, value in SECURITY.items():
        assert f"\r\n{name}: {value.lower()}\r\n" in interim


async def test_hsts_only_when_a_trusted_proxy_says_the_client_used_https(http: aiohttp.ClientSession) -> None:
    url_path = "/trpc/greet"
    async with running_gateway(Settings(gateway_trusted_proxies="127.0.0.1"), fixture_router()) as gateway:
        async with http.get(gateway.base_url + url_path, headers={"X-Forwarded-Proto": "https"}) as response:
            assert response.headers.get("strict-transport-security") == "max-age=31536000"
        async with http.get(gateway.base_url + url_path, headers={"X-Forwarded-Proto": "http"}) as response:
            assert "strict-transport-security" not in response.headers
    # The same header from a peer that is not a trusted proxy is ignored.
    async with (
        running_gateway(Settings(gateway_trusted_proxies="10.0.0.0/8"), fixture_router()) as gateway,
        http.get(gateway.base_url + url_path, headers={"X-Forwarded-Proto": "https"}) as response,
    ):
        assert response.status == 200
        assert "strict-transport-security" not in response.headers
