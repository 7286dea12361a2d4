"""The client's address and scheme: the peer's, or, behind a trusted proxy (GATEWAY_TRUSTED_PROXIES), what it
forwarded in `X-Forwarded-For` / `X-Forwarded-Proto`.

A peer that is not a trusted proxy is the client, whatever it claims: its `X-Forwarded-*` headers are ignored, so
nobody can pick the address that per-client rate limits key on. Behind trusted proxies `X-Forwarded-For` is walked
from the right (the entry the nearest proxy appended) past every trusted hop; the first address that is not a
trusted proxy is the client. A malformed entry stops the walk: the last hop known good is taken, since anything left
of it may have been written by the client.
"""

from __future__ import annotations

import ipaddress
from typing import Final

from aiohttp import web

from gateway.http.setting_lists import parse_trusted_proxies

__all__ = [
    "CLIENT_ADDRESS",
    "ClientResolver",
    "client_address",
]

CLIENT_ADDRESS: Final = web.RequestKey("client_address", str)
"""Set once per request by the request observer (trusted proxies applied); rate limits and logs read it."""

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def client_address(request: web.Request) -> str:
    """The request's client address as established for it; the peer's when nobody established it."""
    try:
        return request[CLIENT_ADDRESS]  # not `request.get`: aiohttp's is the slow generic Mapping one
    except KeyError:
        return request.remote or ""


def _address(text: str) -> Address | None:
    """An `X-Forwarded-For` entry as an address: bare (the norm), or with a port (`203.0.113.7:4711`,
    `[2001:db8::1]:4711`, as some load balancers write it); None if it is neither."""
    text = text.strip()
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    if text.startswith("["):
        host = text[1 : text.find("]")]
    elif text.count(":") == 1:
        host = text.partition(":")[0]
    else:
        return None
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _unmapped(address: Address) -> Address:
    """`::ffff:10.0.0.1` (an IPv4 peer on a dual-stack socket) as `10.0.0.1`, so IPv4 networks match it."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class ClientResolver:
    """Sets CLIENT_ADDRESS on a request and tells its scheme; the trusted networks are parsed once, at start-up."""

    def __init__(self, trusted_proxies: str) -> None:
        self._trusted = parse_trusted_proxies(trusted_proxies)

    def _is_trusted(self, address: Address) -> bool:
        address = _unmapped(address)
        return any(address in network for network in self._trusted)

    def resolve(self, request: web.Request) -> str:
        """Establish the request's client address (once, before its handler runs); the scheme the client used
        (the observer picks the response headers by it: HSTS on https only)."""
        peer = request.remote or ""
        scheme = request.scheme
        if self._trusted:
            peer_address = _address(peer)
            if peer_address is not None and self._is_trusted(peer_address):
                peer = self._forwarded_for(request, peer)
                scheme = self._forwarded_proto(request, scheme)
        request[CLIENT_ADDRESS] = peer
        return scheme

    def _forwarded_for(self, request: web.Request, peer: str) -> str:
        """The first untrusted address of `X-Forwarded-For` from the right; `peer` (a trusted proxy) without one."""
        values = request.headers.getall("X-Forwarded-For", ())
        if not values:
            return peer
        hops = ",".join(values).split(",")
        last_good = peer
        for entry in reversed(hops):
            address = _address(entry)
            if address is None:
                return last_good
            last_good = str(_unmapped(address))
            if not self._is_trusted(address):
                return last_good
        return last_good  # every hop is a trusted proxy: the leftmost one sent the request

    @staticmethod
    def _forwarded_proto(request: web.Request, scheme: str) -> str:
        """`X-Forwarded-Proto` as the nearest proxy set it (its rightmost entry), if it is http or https."""
        value = request.headers.get("X-Forwarded-Proto")
        if value is None:
            return scheme
        proto = value.rpartition(",")[2].strip().lower()
        return proto if proto in ("http", "https") else scheme
