"""The real @trpc/client (v11.25 and v10.45, each with and without superjson) against the gateway.

Each driver run calls every scenario of tests/conformance/node/scenarios.mjs. The gateway's answers are checked
explicitly, then compared with what a real @trpc/server answers to the same client (differential test): apart
from validation and internal-error messages, the client must not see a difference.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.node import reference_server, run_driver
from tests.support.server import RunningGateway

pytestmark = pytest.mark.node

COMBINATIONS = [
    (version, link, transformer)
    for version, links in (
        ("v11", ("httpLink", "httpBatchLink", "httpBatchStreamLink")),
        ("v10", ("httpLink", "httpBatchLink", "unstable_httpBatchStreamLink")),
    )
    for link in links
    for transformer in ("none", "superjson")
]
IDS = [f"{v}-{link}-{t}" for v, link, t in COMBINATIONS]
STREAM_LINKS = {"httpBatchStreamLink", "unstable_httpBatchStreamLink"}


def ok(report: dict[str, Any], scenario: str) -> Any:
    result = report[scenario]
    assert result["ok"], f"{scenario}: {result}"
    return result["data"]


def err(report: dict[str, Any], scenario: str) -> dict[str, Any]:
    result = report[scenario]
    assert not result["ok"], f"{scenario} should fail: {result}"
    error: dict[str, Any] = result["error"]
    return error


def comparable(value: Any) -> Any:
    """A report with what may legitimately differ from @trpc/server removed: validation messages (zod's vs
    ours), internal-error messages, and the extra `data` fields (issues, zodError, stack)."""
    if isinstance(value, dict) and "ok" in value:
        if value["ok"]:
            return {"ok": True, "data": comparable(value["data"])}
        error = value["error"]
        kept = {key: error[key] for key in ("name", "shapeCode", "code", "httpStatus", "path")}
        if error["code"] not in ("BAD_REQUEST", "INTERNAL_SERVER_ERROR"):
            kept["message"] = error["message"]
        return {"ok": False, "error": kept}
    if isinstance(value, dict):
        return {key: comparable(item) for key, item in value.items() if key != "settledOrder"}
    if isinstance(value, list):
        return [comparable(item) for item in value]
    return value


@pytest.mark.parametrize(("version", "link", "transformer"), COMBINATIONS, ids=IDS)
async def test_real_client_against_gateway(
    gateway: RunningGateway, version: str, link: str, transformer: str
) -> None:
    report = await run_driver(version, gateway.trpc_url, link, transformer)

    assert ok(report, "greetAnn") == {"hello": "Ann"}
    assert ok(report, "greetNoInput") == {"hello": "world"}
    assert ok(report, "noInput") == "pong"
    assert ok(report, "nestedHi") == "hi"
    assert ok(report, "add") == 3
    assert ok(report, "echoUndefined") == {"received": None, "wasUndefined": True}
    assert ok(report, "echoNull") == {"received": None, "wasUndefined": False}
    assert ok(report, "echoSpecialChars") == {
        "received": {"s": 'a b&c=d/é,?%+ \u2603 "q" \\'},
        "wasUndefined": False,
    }
    assert ok(report, "retUndefined") == {"$undefined": True}
    assert ok(report, "bigInput") == {"hello": "x" * 9000}

    invalid = err(report, "addInvalid")
    assert (invalid["code"], invalid["httpStatus"], invalid["shapeCode"], invalid["path"]) == (
        "BAD_REQUEST",
        400,
        -32600,
        "add",
    )
    assert [issue["path"] for issue in invalid["data"]["issues"]] == [["a"], ["b"]]
    assert invalid["data"]["zodError"]["fieldErrors"] == {
        "a": ["Expected number, received string"],
        "b": ["Required"],
    }

    missing = err(report, "unknownProcedure")
    assert (missing["code"], missing["httpStatus"], missing["shapeCode"], missing["path"]) == (
        "NOT_FOUND",
        404,
        -32004,
        "nope",
    )
    assert missing["message"] == 'No procedure found on path "nope"'

    boom = err(report, "boom")
    assert (boom["code"], boom["httpStatus"], boom["message"]) == ("INTERNAL_SERVER_ERROR", 500, "kaboom")

    for code, result in ok(report, "throwCodes").items():
        assert not result["ok"]
        assert result["error"]["code"] == code
        assert result["error"]["message"] == f"thrown {code}"

    when = ok(report, "whenDate")
    if transformer == "superjson":
        assert when == {
            "at": {"$date": "2024-01-15T10:30:00.000Z"},
            "nextDay": {"$date": "2024-01-16T10:30:00.000Z"},
        }
    else:
        assert when == {"at": "2024-01-15T10:30:00.000Z", "nextDay": "2024-01-16T10:30:00.000Z"}

    mixed = ok(report, "mixedBatch")
    assert [item["ok"] for item in mixed] == [True, False, False, False]
    assert [item["error"]["code"] for item in mixed[1:]] == [
        "INTERNAL_SERVER_ERROR",
        "NOT_FOUND",
        "BAD_REQUEST",
    ]

    slow_then_fast = report["slowThenFast"]
    assert [item["ok"] for item in slow_then_fast["data"]] == [True, True, False]
    assert slow_then_fast["data"][0]["data"] == {"waited": 150}
    if link in STREAM_LINKS:  # streamed: the slow call's answer comes last, after the others were delivered
        assert slow_then_fast["settledOrder"][-1] == "slow"


@pytest.mark.parametrize(("version", "link", "transformer"), COMBINATIONS, ids=IDS)
async def test_gateway_matches_real_trpc_server(
    gateway: RunningGateway, version: str, link: str, transformer: str
) -> None:
    ours = await run_driver(version, gateway.trpc_url, link, transformer)
    # v10's stream format is only spoken by a v10 server; every other link is compared with @trpc/server 11.
    server_version = "v10" if link == "unstable_httpBatchStreamLink" else "v11"
    with reference_server(server_version, transformer) as url:
        theirs = await run_driver(version, url, link, transformer)
    if server_version == "v10":
        # The v10 server cannot send v11's six new codes nor say "No procedure found"; compare the rest.
        for report in (ours, theirs):
            report.pop("throwCodes")
            report.pop("unknownProcedure")
            report.pop("mixedBatch")
    assert comparable(ours) == comparable(theirs)


@pytest.mark.parametrize(("version", "link", "transformer"), COMBINATIONS, ids=IDS)
async def test_concurrent_calls_share_one_request(
    gateway: RunningGateway, version: str, link: str, transformer: str
) -> None:
    report = await run_driver(version, gateway.trpc_url, link, transformer, "concurrent")

    assert ok(report, "concurrent") == [
        *[{"ok": True, "data": "pong"}] * 5,
        *[{"ok": True, "data": n} for n in (10, 11, 12)],
    ]
    # 5 queries in one tick and 3 mutations in one tick: one request each when batching, else one per call.
    assert len(gateway.requests) == (8 if link == "httpLink" else 2)
