"""CPU instructions per request, counted by valgrind: the gateway and the bare handler, repeatably.

    .venv/bin/python bench/instructions.py [--requests 2000] [--connections 16] [--servers gateway,bare]

req/s on this 2-core machine drift by 10-40 % between runs minutes apart, more than most changes to the hot path
are worth, so a change cannot be judged by them. valgrind's callgrind counts the instructions a process executes
instead: the same code and the same requests give the same count (to a fraction of a percent) however busy the
machine is. For each Python server and scenario this script starts the server under callgrind with instrumentation
off (start-up is not measured), sends a warm-up, switches instrumentation on, sends exactly `--requests` requests
over `--connections` keep-alive connections, dumps the counters, and divides.

What it does not count: time in the kernel (socket reads and writes, the same for both servers but for the log
writes) and cache misses. So the ratio it prints is a lower bound on the req/s ratio's gap, not a prediction of
it; it is the tool for deciding whether a change to the hot path makes it cheaper, and by how much.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from run import BENCH, SCENARIOS, Scenario, free_port

SERVER_SCRIPTS: Final = {"gateway": BENCH / "gateway_app.py", "bare": BENCH / "bare_app.py"}
READY_TIMEOUT: Final = 120.0
"""Python starts slowly under valgrind, even uninstrumented."""
_TOTALS: Final = re.compile(r"^(?:summary|totals):\s+(\d+)", re.MULTILINE)


class InstructionsError(Exception):
    """The count cannot be trusted; the message says why."""


def _request_bytes(scenario: Scenario, port: int) -> bytes:
    head = f"{scenario.method} {scenario.target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
    if scenario.body is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(scenario.body)}\r\n"
    return (head + "\r\n").encode() + (scenario.body or b"")


async def _one_connection(port: int, request: bytes, count: int) -> None:
    """`count` requests one after the other on one keep-alive connection; every answer must be a 200."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for _ in range(count):
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = head.split(b" ", 2)[1]
            if status != b"200":
                raise InstructionsError(f"status {status.decode()}: {head[:300]!r}")
            match = re.search(rb"(?im)^content-length:\s*(\d+)", head)
            if match is None:
                raise InstructionsError(f"no content-length: {head[:300]!r}")
            await reader.readexactly(int(match.group(1)))
    finally:
        writer.close()
        await writer.wait_closed()


async def _load(port: int, request: bytes, requests: int, connections: int) -> None:
    share, extra = divmod(requests, connections)
    await asyncio.gather(
        *(_one_connection(port, request, share + (1 if i < extra else 0)) for i in range(connections))
    )


def _wait_ready(process: subprocess.Popen[bytes], port: int, request: bytes) -> None:
    began = time.monotonic()
    while True:
        if process.poll() is not None:
            raise InstructionsError(f"server exited with code {process.returncode} before answering")
        try:
            asyncio.run(_load(port, request, 1, 1))
            return
        except OSError:
            if time.monotonic() - began > READY_TIMEOUT:
                raise InstructionsError(f"no answer within {READY_TIMEOUT:.0f} s") from None
            time.sleep(0.2)  # polling interval, not a settle delay


def _callgrind_control(pid: int, *args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(pid)], check=True, capture_output=True)


def _dumped_total(out_dir: str, before: set[str]) -> int:
    """The instruction total of the dump that `callgrind_control -d` wrote (a new file beside the first)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for path in sorted(set(glob.glob(os.path.join(out_dir, "callgrind.out*"))) - before):
            match = _TOTALS.search(Path(path).read_text(errors="replace"))
            if match:
                return int(match.group(1))
        time.sleep(0.1)  # polling interval: valgrind writes the dump asynchronously
    raise InstructionsError("callgrind wrote no dump")


@dataclass(frozen=True)
class Count:
    server: str
    scenario: str
    requests: int
    instructions: int

    @property
    def per_request(self) -> float:
        return self.instructions / self.requests


def measure(server: str, scenario: Scenario, requests: int, connections: int, warmup: int) -> Count:
    port = free_port()
    request = _request_bytes(scenario, port)
    with tempfile.TemporaryDirectory(prefix="callgrind-") as out_dir:
        command = [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={out_dir}/callgrind.out",
            sys.executable,
            str(SERVER_SCRIPTS[server]),
            str(port),
        ]
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env
        )
        try:
            _wait_ready(process, port, request)
            asyncio.run(_load(port, request, warmup, connections))
            _callgrind_control(process.pid, "-i", "on")
            _callgrind_control(process.pid, "-z")
            asyncio.run(_load(port, request, requests, connections))
            before = set(glob.glob(os.path.join(out_dir, "callgrind.out*")))
            _callgrind_control(process.pid, "-d")
            total = _dumped_total(out_dir, before)
        finally:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    return Count(server, scenario.key, requests, total)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--servers", default="gateway,bare")
    parser.add_argument("--scenarios", default=",".join(s.key for s in SCENARIOS))
    args = parser.parse_args(argv)
    servers = args.servers.split(",")
    scenarios = [s for s in SCENARIOS if s.key in args.scenarios.split(",")]
    counts: dict[tuple[str, str], Count] = {}
    for scenario in scenarios:
        for server in servers:
            count = measure(server, scenario, args.requests, args.connections, args.warmup)
            counts[server, scenario.key] = count
            print(f"{server:8} {scenario.key:9} {count.per_request:12,.0f} instructions/request", flush=True)
    if "gateway" in servers and "bare" in servers:
        for scenario in scenarios:
            gateway, bare = counts["gateway", scenario.key], counts["bare", scenario.key]
            print(f"{scenario.key:9} bare/gateway {bare.per_request / gateway.per_request:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
