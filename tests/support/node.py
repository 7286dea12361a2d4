"""Running the real @trpc/client drivers and @trpc/server reference servers (tests/conformance/node)."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

NODE_DIR = Path(__file__).resolve().parents[1] / "conformance" / "node"
DRIVER_TIMEOUT_S = 90


async def run_driver(
    version: str, trpc_url: str, link: str, transformer: str, scenario: str | None = None
) -> dict[str, Any]:
    """Run `node client.mjs` for one client version and return its JSON report (scenario -> result)."""
    args = [trpc_url, link, transformer, *([scenario] if scenario else [])]
    process = await asyncio.create_subprocess_exec(
        "node",
        "client.mjs",
        *args,
        cwd=NODE_DIR / version,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), DRIVER_TIMEOUT_S)
    finally:
        if process.returncode is None:  # timed out (or the test was cancelled): do not leave node running
            process.kill()
            await process.wait()
    assert process.returncode == 0, f"driver failed ({process.returncode}): {stderr.decode()}"
    report: dict[str, Any] = json.loads(stdout)
    return report


async def run_calls(
    trpc_url: str,
    calls: list[dict[str, Any]],
    *,
    link: str = "httpBatchLink",
    transformer: str = "none",
    headers: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Make `calls` ({"type", "path", "input"}) with the real @trpc/client v11, all in one tick; their results in
    order, each {"ok": True, "data": ...} or {"ok": False, "error": {"code", "httpStatus", "message", "data", ...}}."""
    args = [trpc_url, link, transformer, json.dumps(calls), json.dumps(headers or {})]
    process = await asyncio.create_subprocess_exec(
        "node",
        "calls.mjs",
        *args,
        cwd=NODE_DIR / "v11",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), DRIVER_TIMEOUT_S)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, f"calls driver failed ({process.returncode}): {stderr.decode()}"
    results: list[dict[str, Any]] = json.loads(stdout)
    return results


@contextmanager
def reference_server(version: str, transformer: str) -> Iterator[str]:
    """A real @trpc/server (v10 or v11) serving the same router as the fixture router; yields its /trpc URL."""
    process = subprocess.Popen(
        ["node", "reference-server.mjs", "0", transformer],
        cwd=NODE_DIR / version,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # blocks until the server is listening (or has died)
        if not line.startswith("listening "):
            raise RuntimeError(f"reference server did not start: {line!r}")
        yield f"http://127.0.0.1:{int(line.split()[1])}/trpc"
    finally:
        process.terminate()
        process.wait(10)
        if process.stdout is not None:
            process.stdout.close()
