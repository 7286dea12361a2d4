# SPDX-License-Identifier: GPL-3.0-or-later
# Test/demo-only Stripe emulator that patches localstripe (GPL-3.0-or-later); not shipped, no gateway module imports it.
"""Error bodies shaped like real Stripe's, so the SDK raises the same exception classes it raises in production.

localstripe answers most failures with `{"error": {"type": "invalid_request_error", "message": "Bad request"}}`, a
402 typed as an invalid request, and plain-text 404/500 pages that stripe-python can only turn into `APIError`.
"""

from __future__ import annotations

import logging
from typing import Any, cast

from aiohttp import web
from aiohttp.typedefs import Handler
from localstripe.errors import UserError
from localstripe.resources import StripeObject

__all__ = ["json_errors_middleware", "patch_errors", "reject_unknown", "resource_missing", "stripe_error"]

_logger = logging.getLogger("emulator")


def stripe_error(
    status: int,
    message: str,
    *,
    error_type: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
    **fields: Any,
) -> Exception:
    """A localstripe `UserError` (so its error middleware renders it) with real Stripe's error fields."""
    contents: dict[str, Any] = {**fields}
    if code is not None:
        contents["code"] = code
    if param is not None:
        contents["param"] = param
    error = UserError(status, message, contents)
    # UserError forces type=invalid_request_error; card and idempotency errors need their own.
    error.body["error"]["type"] = error_type
    return cast(Exception, error)


def reject_unknown(params: dict[str, Any]) -> None:
    """Real Stripe's answer to the first parameter it does not know, if any."""
    name = next(iter(params), None)
    if name is not None:
        raise stripe_error(400, f"Received unknown parameter: {name}", code="parameter_unknown", param=name)


def resource_missing(object_name: str, object_id: str, param: str | None = None) -> Exception:
    """Real Stripe's 404 for an unknown id: `No such payment_intent: 'pi_…'`, code resource_missing."""
    return stripe_error(404, f"No such {object_name}: '{object_id}'", code="resource_missing", param=param)


def patch_errors() -> None:
    """Give localstripe's own errors real Stripe's type and code where its message says which one it is.

    - every 402 is a `card_error` (localstripe types card declines as invalid requests);
    - `Unexpected <name>` becomes `parameter_unknown` with `param`, worded as Stripe does;
    - an unknown id is `resource_missing`, "No such <object>: '<id>'" (localstripe says "Not Found").
    """
    original_init = UserError.__init__

    def init(
        self: Any, code: int, message: str | None = None, contents: dict[str, Any] | None = None
    ) -> None:
        original_init(self, code, message, contents)
        error: dict[str, Any] = self.body["error"]
        if code == 402:
            error["type"] = "card_error"
        if code == 400 and message is not None and message.startswith("Unexpected ") and "code" not in error:
            param = message.removeprefix("Unexpected ").split(", ")[0]
            error.update(
                code="parameter_unknown", param=param, message=f"Received unknown parameter: {param}"
            )

    UserError.__init__ = init

    original_retrieve = StripeObject.__dict__["_api_retrieve"].__func__

    def _api_retrieve(cls: Any, id: Any) -> Any:
        try:
            return original_retrieve(cls, id)
        except UserError as error:
            if error.code == 404:
                raise resource_missing(cls.object, str(id)) from None
            raise

    StripeObject._api_retrieve = classmethod(_api_retrieve)


def _error_response(status: int, error: dict[str, Any]) -> web.Response:
    return web.json_response({"error": error}, status=status)


@web.middleware
async def json_errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Unrouted `/v1/…` URLs and crashes answer with JSON, as real Stripe does, instead of aiohttp's text pages.

    An unknown route then raises `InvalidRequestError` in the SDK (not `APIError` "Invalid response body"), and a
    crash in the emulator is logged with its traceback and answered as Stripe's `api_error`.
    """
    if request.match_info.http_exception is not None and request.path.startswith("/v1/"):
        return _error_response(
            404,
            {
                "type": "invalid_request_error",
                "message": f"Unrecognized request URL ({request.method}: {request.path}).",
            },
        )
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception:
        _logger.exception("emulator crashed on %s %s", request.method, request.path)
        return _error_response(
            500, {"type": "api_error", "message": "The Stripe emulator crashed; see its log (stderr)."}
        )
