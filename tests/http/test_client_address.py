"""The client address and scheme (GATEWAY_TRUSTED_PROXIES): the peer's, or what trusted proxies forwarded."""

from __future__ import annotations

from unittest import mock

import aiohttp
import pytest
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from gateway.auth.access import PUBLIC
from gateway.context import CallContext
from gateway.http.client_address import CLIENT_ADDRESS, ClientResolver
from gateway.registry import Router
from gateway.settings import ConfigurationError, Settings, load_settings
from tests.support.server import running_gateway

PROXIES = "10.0.0.0/8, 192.0.2.7, 2001:db8::/32"


def resolved(peer: str, headers: list[tuple[str, str]], proxies: str = PROXIES) -> tuple[str, str]:
    transport = mock.Mock()
    transport.get_extra_info.side_effect = lambda name, default=None: (
        (peer, 4711) if name == "peername" else default
    )
    request = make_mocked_request("GET", "/trpc/x", headers=CIMultiDict(headers), transport=transport)
    scheme = ClientResolver(proxies).resolve(request)
    return request[CLIENT_ADDRESS], scheme


@pytest.mark.parametrize(
    ("peer", "headers", "expected"),
    [
        pytest.param("203.0.113.9", [], "203.0.113.9", id="direct"),
        pytest.param(
            "203.0.113.9", [("X-Forwarded-For", "198.51.100.1")], "203.0.113.9", id="untrusted-peer"
        ),
        pytest.param("10.1.2.3", [], "10.1.2.3", id="proxy-without-header"),
        pytest.param("10.1.2.3", [("X-Forwarded-For", "198.51.100.1")], "198.51.100.1", id="one-proxy"),
        pytest.param(
            "10.1.2.3",
            [("X-Forwarded-For", "6.6.6.6, 198.51.100.1, 192.0.2.7, 10.9.9.9")],
            "198.51.100.1",
            id="spoofed-left-part-and-trusted-hops-skipped",
        ),
        pytest.param(
            "10.1.2.3",
            [("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-For", "198.51.100.1, 10.9.9.9")],
            "198.51.100.1",
            id="header-repeated",
        ),
        pytest.param(
            "10.1.2.3",
            [("X-Forwarded-For", "198.51.100.1, garbage, 10.9.9.9")],
            "10.9.9.9",
            id="malformed-hop",
        ),
        pytest.param("10.1.2.3", [("X-Forwarded-For", "garbage")], "10.1.2.3", id="malformed-only"),
        pytest.param("10.1.2.3", [("X-Forwarded-For", "10.5.5.5, 192.0.2.7")], "10.5.5.5", id="all-trusted"),
        pytest.param("10.1.2.3", [("X-Forwarded-For", "198.51.100.1:5555")], "198.51.100.1", id="with-port"),
        pytest.param("2001:db8::1", [("X-Forwarded-For", "[2001:db9::5]:80")], "2001:db9::5", id="ipv6"),
        pytest.param(
            "::ffff:10.1.2.3", [("X-Forwarded-For", "198.51.100.1")], "198.51.100.1", id="v4-mapped-peer"
        ),
    ],
)
def test_the_client_is_the_first_untrusted_hop_from_the_right(
    peer: str, headers: list[tuple[str, str]], expected: str
) -> None:
    assert resolved(peer, headers)[0] == expected


def test_no_trusted_proxy_means_forwarded_headers_are_ignored() -> None:
    headers = [("X-Forwarded-For", "198.51.100.1"), ("X-Forwarded-Proto", "https")]
    assert resolved("10.1.2.3", headers, proxies="") == ("10.1.2.3", "http")


@pytest.mark.parametrize(
    ("peer", "proto", "expected"),
    [
        ("10.1.2.3", "https", "https"),
        ("10.1.2.3", "http, https", "https"),  # the nearest proxy's word
        ("10.1.2.3", "HTTPS", "https"),
        ("10.1.2.3", "gopher", "http"),
        ("203.0.113.9", "https", "http"),  # not a trusted proxy
    ],
)
def test_the_scheme_comes_from_x_forwarded_proto_of_trusted_proxies_only(
    peer: str, proto: str, expected: str
) -> None:
    assert resolved(peer, [("X-Forwarded-Proto", proto)])[1] == expected


def test_a_bad_proxy_entry_stops_the_start() -> None:
    with pytest.raises(
        ConfigurationError, match=r"GATEWAY_TRUSTED_PROXIES: '10\.0\.0\.300' is not an IP address"
    ):
        load_settings({"GATEWAY_TRUSTED_PROXIES": "10.0.0.1, 10.0.0.300"}, dotenv=None)


async def test_procedures_see_the_forwarded_client(http: aiohttp.ClientSession) -> None:
    router = Router()

    @router.query(access=PUBLIC)
    def client(ctx: CallContext) -> str:
        return ctx.client

    async with running_gateway(Settings(gateway_trusted_proxies="127.0.0.1"), router) as gateway:
        headers = {"X-Forwarded-For": "6.6.6.6, 198.51.100.1"}
        async with http.get(gateway.trpc_url + "/client", headers=headers) as response:
            assert (await response.json())["result"]["data"] == "198.51.100.1"
    async with (
        running_gateway(Settings(), router) as gateway,
        http.get(gateway.trpc_url + "/client", headers=headers) as response,
    ):
        assert (await response.json())["result"]["data"] == "127.0.0.1"
