"""CORS (GATEWAY_CORS_ORIGINS): preflights and responses on /trpc and /rpc, exact origins only, and the settings
check that refuses `*` and values that are not origins. Off by default: tests/http/test_trpc_wire.py checks that
`OPTIONS` is then the 415 @trpc/server answers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from gateway.http.cors import Cors
from gateway.settings import ConfigurationError, Settings, inspect_settings, load_settings
from tests.support.fixture_router import fixture_router
from tests.support.server import RunningGateway, running_gateway

SHOP = "https://shop.example.com"
PREFLIGHT = {
    "Origin": SHOP,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "content-type, X-Custom, authorization, x-evil",
}


@pytest.fixture
async def cors_gateway() -> AsyncIterator[RunningGateway]:
    settings = Settings(
        gateway_cors_origins=f"{SHOP}, http://localhost:8081", gateway_cors_allow_headers="x-custom"
    )
    async with running_gateway(settings, fixture_router()) as running:
        yield running


def access_control(headers: aiohttp.typedefs.LooseHeaders) -> dict[str, str]:
    return {
        name.lower(): value
        for name, value in dict(headers).items()
        if name.lower().startswith("access-control")
    }


@pytest.mark.parametrize("path", ["/trpc/add", "/rpc"])
async def test_a_preflight_from_an_allowed_origin_is_204_with_what_it_may_send(
    cors_gateway: RunningGateway, http: aiohttp.ClientSession, path: str
) -> None:
    async with http.options(cors_gateway.base_url + path, headers=PREFLIGHT) as response:
        assert response.status == 204
        assert access_control(response.headers) == {
            "access-control-allow-origin": SHOP,
            "access-control-allow-methods": "GET, POST",
            "access-control-allow-headers": "content-type, x-custom, authorization",
            "access-control-max-age": "600",
        }
        assert "Origin" in response.headers.getall("vary")
        assert response.headers["x-content-type-options"] == "nosniff"


async def test_credentials_are_allowed_only_when_configured(http: aiohttp.ClientSession) -> None:
    settings = Settings(gateway_cors_origins=SHOP, gateway_cors_allow_credentials=True)
    async with running_gateway(settings, fixture_router()) as gateway:
        async with http.options(gateway.trpc_url + "/add", headers=PREFLIGHT) as response:
            assert response.headers["access-control-allow-credentials"] == "true"
            assert response.headers["access-control-allow-origin"] == SHOP
        async with http.get(gateway.trpc_url + "/greet", headers={"Origin": SHOP}) as response:
            assert response.headers["access-control-allow-credentials"] == "true"


async def test_a_preflight_from_another_origin_is_403_without_any_allow_header(
    cors_gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    headers = {**PREFLIGHT, "Origin": "https://evil.example.com"}
    async with http.options(cors_gateway.trpc_url + "/add", headers=headers) as response:
        assert response.status == 403
        assert (await response.json())["error"]["data"]["code"] == "FORBIDDEN"
        assert access_control(response.headers) == {}


async def test_an_options_that_is_no_preflight_is_still_the_routes_415(
    cors_gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    async with http.options(cors_gateway.trpc_url + "/greet", headers={"Origin": SHOP}) as response:
        assert response.status == 415


async def test_answers_to_an_allowed_origin_name_it_and_expose_the_request_id(
    cors_gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    async with http.get(
        cors_gateway.trpc_url + "/greet", headers={"Origin": "http://localhost:8081"}
    ) as response:
        assert response.status == 200
        assert access_control(response.headers) == {
            "access-control-allow-origin": "http://localhost:8081",
            "access-control-expose-headers": "x-request-id, retry-after",
        }
        assert sorted(response.headers.getall("vary")) == ["Origin", "trpc-accept, accept"]
    stream = cors_gateway.trpc_url + "/greet,noInput?batch=1&input=%7B%7D"
    async with http.get(stream, headers={"Origin": SHOP, "trpc-accept": "application/jsonl"}) as response:
        assert response.headers.get("transfer-encoding") == "chunked"
        assert response.headers["access-control-allow-origin"] == SHOP
    rpc = {"jsonrpc": "2.0", "id": 1, "method": "greet", "params": {}}
    async with http.post(cors_gateway.base_url + "/rpc", json=rpc, headers={"Origin": SHOP}) as response:
        assert response.headers["access-control-allow-origin"] == SHOP


async def test_other_origins_and_other_routes_get_no_cors_headers(
    cors_gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    async with http.get(
        cors_gateway.trpc_url + "/greet", headers={"Origin": "https://evil.example.com"}
    ) as response:
        assert response.status == 200  # not a browser: it gets its answer, a browser refuses to show it
        assert access_control(response.headers) == {}
        assert "Origin" in response.headers.getall("vary")
    async with http.get(cors_gateway.base_url + "/metrics/payments", headers={"Origin": SHOP}) as response:
        assert access_control(response.headers) == {}


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("*", "wildcards are not allowed"),
        ("https://*.example.com", "wildcards are not allowed"),
        ("https://shop.example.com/", "not an origin"),
        ("https://shop.example.com/app", "not an origin"),
        ("shop.example.com", "not an origin"),
        ("https://user@shop.example.com", "not an origin"),
        ("https://shop.example.com:port", "not an origin"),
    ],
)
def test_the_setting_refuses_wildcards_and_what_is_not_an_origin(value: str, problem: str) -> None:
    with pytest.raises(ConfigurationError, match=f"GATEWAY_CORS_ORIGINS: .*{problem}"):
        load_settings({"GATEWAY_CORS_ORIGINS": value}, dotenv=None)
    assert (
        problem
        in inspect_settings({"GATEWAY_CORS_ORIGINS": value}, dotenv=None).problems["GATEWAY_CORS_ORIGINS"]
    )


def test_origins_and_header_names_are_read_as_browsers_send_them() -> None:
    settings = load_settings(
        {
            "GATEWAY_CORS_ORIGINS": "HTTPS://Shop.Example.com, http://localhost:8081",
            "GATEWAY_CORS_ALLOW_HEADERS": "X-A",
        },
        dotenv=None,
    )
    assert Cors(settings).origins == {"https://shop.example.com", "http://localhost:8081"}
    assert "x-a" in Cors(settings).allowed_headers
    with pytest.raises(ConfigurationError, match="GATEWAY_CORS_ALLOW_HEADERS: 'x a' is not a header name"):
        load_settings({"GATEWAY_CORS_ALLOW_HEADERS": "x a"}, dotenv=None)
