"""The gateway benchmark: the gateway, the bare aiohttp+msgspec ceiling (as is, and with the gateway's coalesced
writes) and @trpc/server v11, in one run.

    .venv/bin/python bench/run.py [--rounds 3] [--duration 5] [--connections 64] [--warmup 2]

Start every server pinned to core 0, wait until each answers and check every route's response body; then, round
after round, for each scenario and each server in turn, warm up and measure with `wrk -t1` pinned to core 1; check
the bodies again and stop the servers. Then compare (per server and scenario the median round; each ratio the
median of the rounds' ratios), rewrite the results section of bench/README.md (between `<!-- results:start -->`
and `<!-- results:end -->`) and write the raw numbers to bench/results/latest.json. Any wrong body, non-2xx
response or socket error fails the run.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import http.client
import importlib.metadata
import json
import os
import platform
import re
import resource
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Final
from urllib.parse import quote

BENCH: Final = Path(__file__).resolve().parent
ROOT: Final = BENCH.parent
RESULTS: Final = BENCH / "results"
README: Final = BENCH / "README.md"
PEER_DIR: Final = BENCH / "trpc-peer"
START_MARKER: Final = "<!-- results:start -->"
END_MARKER: Final = "<!-- results:end -->"
SERVER_CORE: Final = "0"
CLIENT_CORE: Final = "1"
READY_TIMEOUT: Final = 30.0
STOP_TIMEOUT: Final = 15.0
P99_TARGET_MS: Final = 10.0
P99_TARGET_CONNECTIONS: Final = 64
DEFAULT_DURATION: Final = 10
"""Seconds per measurement of the other benchmarks (bench/webhooks.py, bench/replicas.py)."""
ROUND_DURATION: Final = 5
"""Seconds per measurement here, in each of several rounds."""
MIN_MEASURED_SECONDS: Final = 10
WRK_TIMEOUT_SECONDS: Final = 30
"""Below this many seconds measured per scenario and server (all rounds), the results are for orientation only."""
NOISE_LIMIT: Final = 0.05
"""Above this share of the CPU used by other processes during the run, the results are flagged as noisy."""


class BenchError(Exception):
    """The run cannot give trustworthy numbers; the message says why."""


# -- scenarios -------------------------------------------------------------------------------------------------


def _input_query(value: object) -> str:
    """`?input=` as @trpc/client writes it: encodeURIComponent(JSON.stringify(value))."""
    return quote(json.dumps(value, separators=(",", ":")), safe="")


BATCH_SIZE: Final = 10


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    method: str
    target: str
    """Path and query string."""
    expected: object
    """The decoded JSON body every server must answer."""
    body: bytes | None = None
    lua: Path | None = None


SCENARIOS: Final = (
    Scenario(
        "query",
        "Single query `bench.greet`",
        "GET",
        "/trpc/bench.greet?input=" + _input_query({"name": "Ann"}),
        {"result": {"data": {"hello": "Ann"}}},
    ),
    Scenario(
        "mutation",
        "Mutation `bench.add`",
        "POST",
        "/trpc/bench.add",
        {"result": {"data": 3}},
        body=b'{"a": 1, "b": 2}',
        lua=BENCH / "wrk" / "add.lua",
    ),
    Scenario(
        "batch",
        f"Batch of {BATCH_SIZE} `bench.greet` queries",
        "GET",
        "/trpc/"
        + ",".join(["bench.greet"] * BATCH_SIZE)
        + "?batch=1&input="
        + _input_query({str(i): {"name": f"A{i}"} for i in range(BATCH_SIZE)}),
        [{"result": {"data": {"hello": f"A{i}"}}} for i in range(BATCH_SIZE)],
    ),
)


# -- servers ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    key: str
    title: str
    command: Callable[[int], list[str]]
    env: dict[str, str] = field(default_factory=dict)


SERVERS: Final = (
    Server(
        "gateway",
        "gateway (logging on)",
        lambda port: [sys.executable, str(BENCH / "gateway_app.py"), str(port)],
    ),
    Server(
        "bare", "bare aiohttp + msgspec", lambda port: [sys.executable, str(BENCH / "bare_app.py"), str(port)]
    ),
    Server(
        "bare_coalesced",
        "bare, writes coalesced as the gateway's",
        lambda port: [sys.executable, str(BENCH / "bare_app.py"), str(port), "--coalesce-writes"],
    ),
    Server(
        "peer",
        "@trpc/server 11 (Node)",
        lambda port: ["node", str(PEER_DIR / "server.mjs"), str(port)],
        env={"NODE_ENV": "production"},
    ),
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Running:
    server: Server
    port: int
    process: subprocess.Popen[bytes]
    stdout_path: Path
    stderr_path: Path

    def stderr_tail(self) -> str:
        lines = self.stderr_path.read_text(errors="replace").splitlines()
        return "\n".join(lines[-20:])


def start(
    server: Server, stdout: IO[bytes], stderr: IO[bytes], stdout_path: Path, stderr_path: Path
) -> Running:
    port = free_port()
    process = subprocess.Popen(
        ["taskset", "-c", SERVER_CORE, *server.command(port)],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
        env={**os.environ, **server.env},
    )
    return Running(server, port, process, stdout_path, stderr_path)


def fetch(port: int, scenario: Scenario, timeout: float = 5.0) -> tuple[int, str, bytes]:
    """One request as wrk will send it: status, content type, body."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"content-type": "application/json"} if scenario.body is not None else {}
        conn.request(scenario.method, scenario.target, body=scenario.body, headers=headers)
        response = conn.getresponse()
        return response.status, response.getheader("content-type") or "", response.read()
    finally:
        conn.close()


def wait_ready(running: Running) -> float:
    """Poll the query route until the server answers; returns the seconds it took."""
    began = time.monotonic()
    while True:
        if running.process.poll() is not None:
            raise BenchError(
                f"{running.server.key} exited with code {running.process.returncode} before answering:\n"
                + running.stderr_tail()
            )
        try:
            fetch(running.port, SCENARIOS[0], timeout=1.0)
            return time.monotonic() - began
        except OSError:
            if time.monotonic() - began > READY_TIMEOUT:
                raise BenchError(
                    f"{running.server.key} did not answer within {READY_TIMEOUT:.0f} s:\n"
                    + running.stderr_tail()
                ) from None
            time.sleep(0.02)  # polling interval, not a settle delay


def verify(running: Running) -> None:
    """Every route answers 200, JSON, with exactly the expected body."""
    for scenario in SCENARIOS:
        status, content_type, body = fetch(running.port, scenario)
        problem = None
        if status != 200:
            problem = f"status {status}"
        elif not content_type.startswith("application/json"):
            problem = f"content-type {content_type!r}"
        else:
            try:
                if json.loads(body) != scenario.expected:
                    problem = "unexpected body"
            except ValueError:
                problem = "body is not JSON"
        if problem:
            raise BenchError(
                f"{running.server.key} {scenario.key}: {problem}: {body[:500]!r}\n"
                f"expected {json.dumps(scenario.expected)}"
            )


def stop(running: Running) -> None:
    process = running.process
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- wrk -------------------------------------------------------------------------------------------------------

_UNITS: Final = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}
_PERCENTILE: Final = re.compile(r"^\s+(\d+)%\s+([\d.]+)(us|ms|s|m)\s*$", re.MULTILINE)
_RPS: Final = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)
_TOTAL: Final = re.compile(r"^\s+(\d+) requests in ([\d.]+)(us|ms|s|m),", re.MULTILINE)
_NON_2XX: Final = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_SOCKET_ERRORS: Final = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


@dataclass
class WrkResult:
    requests_per_second: float
    requests: int
    seconds: float
    latency_ms: dict[str, float]
    """Percentile (`50`, `75`, `90`, `99`) -> milliseconds, from `--latency`."""
    non_2xx: int
    socket_errors: dict[str, int]

    @property
    def p50(self) -> float:
        return self.latency_ms["50"]

    @property
    def p99(self) -> float:
        return self.latency_ms["99"]


def parse_wrk(output: str) -> WrkResult:
    rps = _RPS.search(output)
    total = _TOTAL.search(output)
    percentiles = {p: float(value) * _UNITS[unit] for p, value, unit in _PERCENTILE.findall(output)}
    if rps is None or total is None or "50" not in percentiles or "99" not in percentiles:
        raise BenchError(f"cannot read wrk's output:\n{output}")
    non_2xx = _NON_2XX.search(output)
    errors = _SOCKET_ERRORS.search(output)
    counts = [int(n) for n in errors.groups()] if errors else [0, 0, 0, 0]
    return WrkResult(
        requests_per_second=float(rps.group(1)),
        requests=int(total.group(1)),
        seconds=float(total.group(2)) * _UNITS[total.group(3)] / 1000,
        latency_ms=percentiles,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=dict(zip(("connect", "read", "write", "timeout"), counts, strict=True)),
    )


def run_wrk(port: int, scenario: Scenario, duration: int, connections: int) -> WrkResult:
    command = [
        "taskset",
        "-c",
        CLIENT_CORE,
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{duration}s",
        # wrk's default 2 s would count a slower answer as a socket error (failing the run) and leave it out of the
        # latencies; a server that stalls that long (the peer's collector, on a slow day) is slow, not broken.
        f"--timeout={WRK_TIMEOUT_SECONDS}s",
        "--latency",
    ]
    if scenario.lua is not None:
        command += ["-s", str(scenario.lua)]
    command.append(f"http://127.0.0.1:{port}{scenario.target}")
    done = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60, check=False)
    if done.returncode != 0:
        raise BenchError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    result = parse_wrk(done.stdout)
    if result.non_2xx or any(result.socket_errors.values()):
        raise BenchError(
            f"{scenario.key}: wrk saw {result.non_2xx} non-2xx responses and socket errors {result.socket_errors}:\n"
            + done.stdout
        )
    return result


# -- one server ------------------------------------------------------------------------------------------------


@dataclass
class ServerRun:
    rounds: dict[str, list[WrkResult]]
    """Per scenario, the measurement of each round, in order."""
    ready_seconds: float
    requests_sent: int = 0
    """Every request wrk completed (warm-ups included) plus the verification requests."""
    stdout_lines: int = 0
    stdout_bytes: int = 0

    @property
    def scenarios(self) -> dict[str, WrkResult]:
        """Per scenario, the round with the median req/s (its latencies go with it)."""
        return {
            key: sorted(results, key=lambda r: r.requests_per_second)[(len(results) - 1) // 2]
            for key, results in self.rounds.items()
        }


def _count_lines(path: Path) -> int:
    lines = 0
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            lines += chunk.count(b"\n")
    return lines


def bench_servers(servers: list[Server], args: argparse.Namespace) -> dict[str, ServerRun]:
    """Start every server (all on core 0: one idles while another is measured), then measure them in turn, round
    after round: the machine's speed drifts by tens of percent within minutes here, and servers measured seconds
    apart, several times over, see the same drift, where servers measured one after the other for minutes do not."""
    with contextlib.ExitStack() as stack:
        running: dict[str, Running] = {}
        runs: dict[str, ServerRun] = {}
        for server in servers:
            stdout_path = RESULTS / f"{server.key}.stdout.log"
            stderr_path = RESULTS / f"{server.key}.stderr.log"
            stdout = stack.enter_context(stdout_path.open("wb"))
            stderr = stack.enter_context(stderr_path.open("wb"))
            started = running[server.key] = start(server, stdout, stderr, stdout_path, stderr_path)
            stack.callback(stop, started)
        for server in servers:
            runs[server.key] = ServerRun({s.key: [] for s in SCENARIOS}, wait_ready(running[server.key]))
            verify(running[server.key])
            runs[server.key].requests_sent = 1 + len(SCENARIOS)
        for round_number in range(1, args.rounds + 1):
            for scenario in SCENARIOS:
                for server in servers:
                    port, run = running[server.key].port, runs[server.key]
                    if args.warmup > 0:
                        run.requests_sent += run_wrk(port, scenario, args.warmup, args.connections).requests
                    result = run_wrk(port, scenario, args.duration, args.connections)
                    run.requests_sent += result.requests
                    run.rounds[scenario.key].append(result)
                    say(
                        f"round {round_number}/{args.rounds}: {server.key}: {scenario.key}: "
                        f"{result.requests_per_second:,.0f} req/s, p50 {result.p50:.2f} ms, p99 {result.p99:.2f} ms"
                    )
        for server in servers:
            verify(running[server.key])  # still right after the load
            runs[server.key].requests_sent += len(SCENARIOS)
    for server in servers:  # the servers have stopped: their logs are complete
        stdout_path = RESULTS / f"{server.key}.stdout.log"
        runs[server.key].stdout_lines = _count_lines(stdout_path)
        runs[server.key].stdout_bytes = stdout_path.stat().st_size
    return runs


# -- comparison ------------------------------------------------------------------------------------------------


@dataclass
class Check:
    name: str
    measured: float | None
    target: str
    passed: bool | None
    """None: not judged (a server is missing, or the run used another connection count)."""


RATIO_TARGETS: Final = (
    ("query", "bare", 0.60),
    ("query", "peer", 3.0),
    ("batch", "peer", 5.0),
)


def ratio(runs: dict[str, ServerRun], scenario: str, other: str) -> float | None:
    """The median over rounds of the gateway's req/s over `other`'s in the same round."""
    if "gateway" not in runs or other not in runs:
        return None
    pairs = zip(runs["gateway"].rounds[scenario], runs[other].rounds[scenario], strict=True)
    return statistics.median(mine.requests_per_second / theirs.requests_per_second for mine, theirs in pairs)


def checks(runs: dict[str, ServerRun], connections: int) -> list[Check]:
    found: list[Check] = []
    for key, other, minimum in RATIO_TARGETS:
        value = ratio(runs, key, other)
        found.append(
            Check(
                f"{key}: gateway / {other} req/s",
                value,
                f">= {minimum:g}",
                None if value is None else value >= minimum,
            )
        )
    if "gateway" in runs:
        for scenario in SCENARIOS:
            p99 = runs["gateway"].scenarios[scenario.key].p99
            judged = connections == P99_TARGET_CONNECTIONS
            found.append(
                Check(
                    f"{scenario.key}: gateway p99 (ms)",
                    p99,
                    f"< {P99_TARGET_MS:g} at {P99_TARGET_CONNECTIONS} connections",
                    p99 < P99_TARGET_MS if judged else None,
                )
            )
    return found


# -- environment -----------------------------------------------------------------------------------------------


def command_output(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "missing"
    return (
        (done.stdout or done.stderr).strip().splitlines()[0] if (done.stdout or done.stderr).strip() else "?"
    )


def _npm_version(package: str) -> str:
    manifest = PEER_DIR / "node_modules" / package / "package.json"
    try:
        version: str = json.loads(manifest.read_text())["version"]
        return version
    except (OSError, ValueError, KeyError):
        return "missing"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


class CpuMeter:
    """How much CPU *other* processes used during the run: the machine's busy time (/proc/stat user, nice, system
    and steal) minus what this script and the servers and wrk it started (and waited for) used. Interrupt time is
    left out: most of it is the loopback traffic of the run itself."""

    def __init__(self) -> None:
        self.wall = time.monotonic()
        self.busy = self._machine_busy()
        self.ours = self._ours()

    @staticmethod
    def _machine_busy() -> float:
        # cpu  user nice system idle iowait irq softirq steal ...
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        user, nice, system, _idle, _iowait, _irq, _softirq, steal = (int(x) for x in fields[:8])
        return (user + nice + system + steal) / os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _ours() -> float:
        total = 0.0
        for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
            usage = resource.getrusage(who)
            total += usage.ru_utime + usage.ru_stime
        return total

    def others_share(self) -> float:
        """CPU time of other processes / (wall time x CPUs), 0..1."""
        wall = time.monotonic() - self.wall
        others = (self._machine_busy() - self.busy) - (self._ours() - self.ours)
        cpus = os.cpu_count() or 1
        return max(0.0, others / (wall * cpus)) if wall > 0 else 0.0


def machine() -> dict[str, str]:
    return {
        "nproc": command_output(["nproc"]),
        "cpu": _cpu_model(),
        "kernel": platform.release(),
        "load_average_at_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def versions() -> dict[str, str]:
    found = {"Python": platform.python_version()}
    for package in ("aiohttp", "msgspec", "loguru"):
        found[package] = importlib.metadata.version(package)
    found["Node"] = command_output(["node", "--version"])
    found["@trpc/server"] = _npm_version("@trpc/server")
    found["zod"] = _npm_version("zod")
    found["wrk"] = command_output(["wrk", "--version"]).split(" [")[0].removeprefix("wrk ")
    return found


def preflight(servers: list[Server]) -> None:
    for tool in ("taskset", "wrk"):
        if shutil.which(tool) is None:
            raise BenchError(f"{tool} is not installed: run `bash bench/setup`")
    if len(os.sched_getaffinity(0)) < 2 or not {0, 1} <= os.sched_getaffinity(0):
        raise BenchError("cores 0 and 1 must both be available: the server runs on one, wrk on the other")
    if any(s.key == "peer" for s in servers) and _npm_version("@trpc/server") == "missing":
        raise BenchError("@trpc/server is not installed in bench/trpc-peer: run `bash bench/setup`")


# -- report ----------------------------------------------------------------------------------------------------


def _relative(path: str) -> str:
    try:
        return str(Path(path).absolute().relative_to(ROOT))
    except ValueError:
        return path


def command_line() -> str:
    return shlex.join([_relative(sys.executable), _relative(sys.argv[0]), *sys.argv[1:]])


def _verdict(check: Check) -> str:
    return "n/a" if check.passed is None else ("**pass**" if check.passed else "**FAIL**")


def _measured(check: Check) -> str:
    if check.measured is None:
        return "n/a"
    return f"{check.measured:.2f} ms" if "(ms)" in check.name else f"{check.measured:.2f}x"


def render(report: dict[str, Any], runs: dict[str, ServerRun], found: list[Check]) -> str:
    lines = [
        START_MARKER,
        "",
        "_Written by `bench/run.py`; do not edit by hand._",
        "",
        f"- date: {report['date']}",
        f"- command: `{report['command']}` (from the repository root)",
        f"- load: {report['rounds']} rounds, servers alternating; in each, {report['duration_s']:g} s per scenario "
        f"and server after a {report['warmup_s']:g} s warm-up, {report['connections']} connections, `wrk -t1` on "
        f"core {CLIENT_CORE}, servers on core {SERVER_CORE}; tables show each server's median round, ratios the "
        "median of the rounds' ratios",
        f"- machine: `nproc` = {report['machine']['nproc']}, {report['machine']['cpu']}, "
        f"Linux {report['machine']['kernel']}, load average at start {report['machine']['load_average_at_start']}",
        "- versions: " + ", ".join(f"{name} {version}" for name, version in report["versions"].items()),
        f"- other processes used {100 * report['other_processes_cpu_share']:.0f} % of the machine's CPU "
        "during the run",
    ]
    gateway = runs.get("gateway")
    if gateway is not None:
        lines.append(
            f"- gateway request log: {gateway.stdout_lines:,} JSON lines ({gateway.stdout_bytes / 1e6:.1f} MB) "
            f"written to bench/results/gateway.stdout.log for {gateway.requests_sent:,} requests"
        )
    caveats = []
    if report["duration_s"] * report["rounds"] < MIN_MEASURED_SECONDS:
        caveats.append(f"a short run ({report['duration_s'] * report['rounds']} s per scenario and server)")
    if report["other_processes_cpu_share"] > NOISE_LIMIT:
        caveats.append("a busy machine")
    if caveats:
        lines += [
            "",
            f"**Orientation only: {' and '.join(caveats)}.** Re-run with the defaults on a quiet machine for "
            "numbers to judge the targets by.",
        ]
    for scenario in SCENARIOS:
        lines += ["", f"### {scenario.title}", "", "| server | req/s | p50 | p99 |", "|---|--:|--:|--:|"]
        for server in SERVERS:
            if server.key in runs:
                result = runs[server.key].scenarios[scenario.key]
                lines.append(
                    f"| {server.title} | {result.requests_per_second:,.0f} | {result.p50:.2f} ms "
                    f"| {result.p99:.2f} ms |"
                )
        extra = [
            f"gateway / {other}: {value:.2f}x"
            for other in ("bare", "bare_coalesced", "peer")
            if (value := ratio(runs, scenario.key, other)) is not None
        ]
        if extra:
            lines += ["", "Ratios: " + ", ".join(extra) + "."]
    lines += ["", "### Targets", "", "| check | measured | target | result |", "|---|--:|---|---|"]
    for check in found:
        lines.append(f"| {check.name} | {_measured(check)} | {check.target} | {_verdict(check)} |")
    lines += ["", END_MARKER]
    return "\n".join(lines)


def rewrite_readme(section: str, start_marker: str = START_MARKER, end_marker: str = END_MARKER) -> None:
    """Replace the README's section between the markers (each benchmark owns its own pair)."""
    text = README.read_text()
    start, end = text.find(start_marker), text.find(end_marker)
    if start < 0 or end < start:
        raise BenchError(f"{README} has no {start_marker} ... {end_marker} section")
    README.write_text(text[:start] + section + text[end + len(end_marker) :])


def say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--duration",
        type=int,
        default=ROUND_DURATION,
        help=f"seconds measured per scenario, server and round (default {ROUND_DURATION})",
    )
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (default 64)")
    parser.add_argument(
        "--warmup", type=int, default=2, help="seconds of warm-up before each measurement (default 2)"
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds of measurements, servers alternating (default 3)"
    )
    parser.add_argument(
        "--servers",
        default=",".join(s.key for s in SERVERS),
        help="comma-separated subset of gateway,bare,bare_coalesced,peer (a subset writes bench/results/partial.json only)",
    )
    args = parser.parse_args(argv)
    wanted = args.servers.split(",")
    unknown = set(wanted) - {s.key for s in SERVERS}
    if unknown:
        parser.error(f"unknown servers: {', '.join(sorted(unknown))}")
    servers = [s for s in SERVERS if s.key in wanted]
    try:
        preflight(servers)
        RESULTS.mkdir(exist_ok=True)
        report: dict[str, Any] = {
            "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "command": command_line(),
            "duration_s": args.duration,
            "rounds": args.rounds,
            "warmup_s": args.warmup,
            "connections": args.connections,
            "machine": machine(),
            "versions": versions(),
        }
        meter = CpuMeter()
        runs = bench_servers(servers, args)
        report["other_processes_cpu_share"] = round(meter.others_share(), 3)
    except BenchError as error:
        say(f"failed: {error}")
        return 1
    gateway = runs.get("gateway")
    if gateway is not None and gateway.stdout_lines < gateway.requests_sent:
        say(f"failed: the gateway logged {gateway.stdout_lines} lines for {gateway.requests_sent} requests")
        return 1
    found = checks(runs, args.connections)
    report["servers"] = {key: asdict(run) for key, run in runs.items()}
    report["checks"] = [asdict(check) for check in found]
    section = render(report, runs, found)
    print(section)
    if len(runs) == len(SERVERS):
        (RESULTS / "latest.json").write_text(json.dumps(report, indent=2) + "\n")
        rewrite_readme(section)
        say("results written to bench/README.md and bench/results/latest.json")
    else:
        (RESULTS / "partial.json").write_text(json.dumps(report, indent=2) + "\n")
        say(
            "not every server ran: bench/README.md and latest.json left as they are; see bench/results/partial.json"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
