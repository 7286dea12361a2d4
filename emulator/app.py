# SPDX-License-Identifier: GPL-3.0-or-later
# Test/demo-only Stripe emulator that patches localstripe (GPL-3.0-or-later); not shipped, no gateway module imports it.
"""localstripe's aiohttp application, patched, with the emulator's middlewares and routes."""

from __future__ import annotations

from typing import cast

from aiohttp import web

from emulator.errors import json_errors_middleware
from emulator.idempotency import idempotency_middleware
from emulator.patch import apply_patches
from emulator.routes import add_routes

__all__ = ["build_app"]


def build_app(*, api_version: str) -> web.Application:
    """The one application of this process (localstripe keeps its state and its app in module globals)."""
    apply_patches(api_version=api_version)
    from localstripe.server import app  # only now: it binds the routes of the patched methods

    if idempotency_middleware not in app.middlewares:
        # Outermost first: a replay is answered before anything else runs; crashes become Stripe-shaped JSON.
        app.middlewares.insert(0, json_errors_middleware)
        app.middlewares.insert(0, idempotency_middleware)
        add_routes(app)
    return cast(web.Application, app)
