"""The first step of every request: /trpc calls go straight to their route; everything else to aiohttp's router.

aiohttp's `Application._handle` resolves each request through its URL dispatcher (walking the path's prefixes,
matching the routes' regular expressions, building and freezing a match-info object) before calling the handler.
For /trpc, which carries nearly all of the gateway's traffic, the answer is known from the path's first characters:
its route is the only one under `/trpc` (`create_app` adds it first and adds no other route there), so the router
would always pick it. The front door makes that decision with one `startswith` and calls the observed route itself.
With the response headers added by the observer rather than by a response signal, that took 8 % of the
instructions of a query (402k to 371k) off the hot path (`bench/instructions.py`).

What the router's path would have added is either unused by the gateway or kept:
- no middlewares exist, and the routes never read `request.match_info` or `request.app`;
- an `Expect` header (`100-continue`) still goes through the router, whose expect handler answers it;
- the `on_response_prepare` signal does not fire for these requests: the request observer adds the response
  headers itself (`gateway.http.hygiene`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

__all__ = ["DIRECT_ROUTE", "RequestHandler", "front_door"]

RequestHandler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]
"""What `web.Server` calls with each request (the application's requests are `web.Request`s)."""

DIRECT_ROUTE: Final = web.AppKey("direct_route", tuple[str, Handler])
"""(path prefix, observed handler) of the route the front door serves itself; set by `create_app`."""


def front_door(routed: RequestHandler, prefix: str, direct: Handler) -> RequestHandler:
    """A request handler sending requests whose path starts with `prefix` to `direct`, and all others (and any with
    an `Expect` header) to `routed` (the application's own, router and all)."""

    async def dispatch(request: web.BaseRequest) -> web.StreamResponse:
        # `path_safe` is the path the router matches (percent-decoded but for `%2F`): same path, same decision.
        if request.rel_url.path_safe.startswith(prefix) and hdrs.EXPECT not in request.headers:
            return await direct(request)  # type: ignore[arg-type]  # a web.Request: the app's request factory
        return await routed(request)

    return dispatch
