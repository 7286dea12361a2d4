"""The HTTP layer's comma-separated settings, parsed once at start-up (and checked by `load_settings`).

Kept free of aiohttp so that configuration checks (`gateway.settings`) can use the very parsers the server uses:
a value the check accepts is a value the server understands.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Final
from urllib.parse import urlsplit

__all__ = ["Network", "parse_cors_origins", "parse_header_names", "parse_trusted_proxies"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_TOKEN: Final = re.compile(r"^[!#$%&'*+.^_`|~0-9a-z-]+$")
"""An HTTP field name (RFC 9110 `token`), lower-cased."""


def _entries(value: str) -> list[str]:
    return [entry.strip() for entry in value.split(",") if entry.strip()]


def parse_trusted_proxies(value: str) -> tuple[Network, ...]:
    """GATEWAY_TRUSTED_PROXIES's networks (`10.0.0.0/8, 192.0.2.7, ::1`); ValueError names a bad entry."""
    networks: list[Network] = []
    for entry in _entries(value):
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"{entry!r} is not an IP address or CIDR network") from None
    return tuple(networks)


def parse_cors_origins(value: str) -> tuple[str, ...]:
    """GATEWAY_CORS_ORIGINS's origins, exactly as browsers send them in `Origin` (`scheme://host[:port]`, lower
    case). ValueError for `*` (a payment API is never open to every web page, and `*` cannot go with credentials)
    and for anything that is not an origin (a path, even `/`, a query, user info, no scheme)."""
    origins: list[str] = []
    for entry in _entries(value):
        if "*" in entry:
            raise ValueError(
                f"{entry!r}: wildcards are not allowed, list each origin (https://shop.example.com)"
            )
        try:
            parts = urlsplit(entry)
            parts.port  # noqa: B018 - raises ValueError on a port that is not a number
        except ValueError:
            raise ValueError(f"{entry!r} is not an origin (scheme://host[:port])") from None
        if (
            not parts.scheme
            or not parts.hostname
            or parts.path
            or parts.query
            or parts.fragment
            or "@" in parts.netloc
            or entry.endswith(("?", "#"))
        ):
            raise ValueError(
                f"{entry!r} is not an origin (scheme://host[:port], no path, not even a final /)"
            )
        origins.append(f"{parts.scheme}://{parts.netloc}".lower())
    return tuple(dict.fromkeys(origins))


def parse_header_names(value: str) -> tuple[str, ...]:
    """GATEWAY_CORS_ALLOW_HEADERS's header names, lower-cased; ValueError names one that is not a header name."""
    names: list[str] = []
    for entry in _entries(value):
        name = entry.lower()
        if not _TOKEN.match(name):
            raise ValueError(f"{entry!r} is not a header name")
        names.append(name)
    return tuple(dict.fromkeys(names))
