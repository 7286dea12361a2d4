# SPDX-License-Identifier: GPL-3.0-or-later
# Test/demo-only Stripe emulator that patches localstripe (GPL-3.0-or-later); not shipped, no gateway module imports it.
"""`/v1/webhook_endpoints` (absent from localstripe): the endpoints an account has configured, as the Dashboard's
Webhooks page shows them, so that `gateway check-payments` can be tested offline.

Create (`url`, `enabled_events`, optional `api_version`, `description`, `metadata`), list (`limit`,
`starting_after`), retrieve, update (`url`, `enabled_events`, `disabled`, `description`, `metadata`) and delete. As on
Stripe, the signing `secret` is in the create answer only, and `status` is `enabled` or `disabled`.

These endpoints are only stored: the emulator delivers events to the registrations of `/_config/webhooks/<id>`
(localstripe's), not to them, so a test can describe a production URL without the emulator calling it.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from localstripe.resources import try_convert_to_bool, try_convert_to_int

from emulator.errors import reject_unknown, resource_missing, stripe_error
from emulator.patches import store
from emulator.routes.params import new_id, post_params, query_params

__all__ = ["routes"]

_OBJECT = "webhook_endpoint"
_URL = "/v1/webhook_endpoints"


@dataclass
class _Endpoint:
    id: str
    url: str
    enabled_events: list[str]
    secret: str
    api_version: str | None = None
    description: str | None = None
    disabled: bool = False
    metadata: dict[str, str] = field(default_factory=dict)
    created: int = field(default_factory=lambda: int(time.time()))

    def export(self, *, with_secret: bool = False) -> dict[str, Any]:
        exported: dict[str, Any] = {
            "id": self.id,
            "object": _OBJECT,
            "api_version": self.api_version,
            "application": None,
            "created": self.created,
            "description": self.description,
            "enabled_events": list(self.enabled_events),
            "livemode": False,
            "metadata": dict(self.metadata),
            "status": "disabled" if self.disabled else "enabled",
            "url": self.url,
        }
        if with_secret:
            exported["secret"] = self.secret
        return exported


_endpoints: dict[str, _Endpoint] = {}
store.on_reset(_endpoints.clear)


def _endpoint(endpoint_id: str) -> _Endpoint:
    endpoint = _endpoints.get(endpoint_id)
    if endpoint is None:
        raise resource_missing(_OBJECT, endpoint_id)
    return endpoint


def _url(value: Any) -> str:
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise stripe_error(400, "Invalid URL: must be an http(s) URL.", code="url_invalid", param="url")
    return value


def _events(value: Any) -> list[str]:
    # The SDK sends `enabled_events[0]=…`, a JSON body a list; both arrive here as a list of strings.
    if not isinstance(value, list) or not value or not all(isinstance(e, str) and e for e in value):
        raise stripe_error(
            400,
            "Invalid array: enabled_events must list event types (or `*`).",
            code="parameter_invalid_empty",
            param="enabled_events",
        )
    return list(value)


def _metadata(value: Any) -> dict[str, str]:
    if value in (None, ""):
        return {}
    if not isinstance(value, dict):
        raise stripe_error(400, "Invalid object", param="metadata")
    return {str(k): str(v) for k, v in value.items()}


async def _create(request: web.Request) -> web.Response:
    params = await post_params(request)
    params.pop("expand", None)
    if "url" not in params:
        raise stripe_error(400, "Missing required param: url.", code="parameter_missing", param="url")
    if "enabled_events" not in params:
        raise stripe_error(
            400,
            "Missing required param: enabled_events.",
            code="parameter_missing",
            param="enabled_events",
        )
    endpoint = _Endpoint(
        id=new_id("we_"),
        url=_url(params.pop("url")),
        enabled_events=_events(params.pop("enabled_events")),
        secret="whsec_" + secrets.token_hex(16),
        api_version=params.pop("api_version", None),
        description=params.pop("description", None),
        metadata=_metadata(params.pop("metadata", None)),
    )
    reject_unknown(params)
    _endpoints[endpoint.id] = endpoint
    return web.json_response(endpoint.export(with_secret=True))


async def _list(request: web.Request) -> web.Response:
    params = query_params(request)
    params.pop("expand", None)
    limit = try_convert_to_int(params.pop("limit", 10))
    starting_after = params.pop("starting_after", None)
    reject_unknown(params)
    if type(limit) is not int or not 1 <= limit <= 100:
        raise stripe_error(400, "Invalid integer: limit must be between 1 and 100", param="limit")
    found = list(reversed(_endpoints.values()))  # newest first, as Stripe lists
    if starting_after is not None:
        ids = [e.id for e in found]
        found = found[ids.index(starting_after) + 1 :] if starting_after in ids else []
    page = found[:limit]
    return web.json_response(
        {"object": "list", "url": _URL, "has_more": len(found) > limit, "data": [e.export() for e in page]}
    )


async def _retrieve(request: web.Request) -> web.Response:
    return web.json_response(_endpoint(request.match_info["id"]).export())


async def _update(request: web.Request) -> web.Response:
    endpoint = _endpoint(request.match_info["id"])
    params = await post_params(request)
    params.pop("expand", None)
    if "url" in params:
        endpoint.url = _url(params.pop("url"))
    if "enabled_events" in params:
        endpoint.enabled_events = _events(params.pop("enabled_events"))
    if "disabled" in params:
        disabled = try_convert_to_bool(params.pop("disabled"))
        if type(disabled) is not bool:
            raise stripe_error(400, "Invalid boolean", code="parameter_invalid_boolean", param="disabled")
        endpoint.disabled = disabled
    if "description" in params:
        endpoint.description = params.pop("description") or None
    if "metadata" in params:
        for key, value in _metadata(params.pop("metadata")).items():
            if value:
                endpoint.metadata[key] = value
            else:  # as on Stripe, an empty value unsets the key
                endpoint.metadata.pop(key, None)
    reject_unknown(params)
    return web.json_response(endpoint.export())


async def _delete(request: web.Request) -> web.Response:
    endpoint = _endpoints.pop(request.match_info["id"], None)
    if endpoint is None:
        raise resource_missing(_OBJECT, request.match_info["id"])
    return web.json_response({"id": endpoint.id, "object": _OBJECT, "deleted": True})


routes = [
    web.post(_URL, _create),
    web.get(_URL, _list),
    web.get(_URL + "/{id}", _retrieve),
    web.post(_URL + "/{id}", _update),
    web.delete(_URL + "/{id}", _delete),
]
