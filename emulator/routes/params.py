# SPDX-License-Identifier: GPL-3.0-or-later
# Test/demo-only Stripe emulator that patches localstripe (GPL-3.0-or-later); not shipped, no gateway module imports it.
"""Request parameters for the emulator's own routes, decoded as localstripe decodes its own (`a[b]=…`, JSON)."""

from __future__ import annotations

import secrets
import string
from typing import Any

from aiohttp import web

__all__ = ["new_id", "post_params", "query_params"]

_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str) -> str:
    """A Stripe-looking id such as `pmd_1a2B…`."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(24))


async def post_params(request: web.Request) -> dict[str, Any]:
    # Imported here, not at the top: localstripe.server may only be imported once the patches are applied.
    from localstripe.server import get_post_data

    data = await get_post_data(request)
    return dict(data) if isinstance(data, dict) else {}


def query_params(request: web.Request) -> dict[str, Any]:
    from localstripe.server import unflatten_data

    return dict(unflatten_data(request.query))
