"""nginx (Debian's package, installed by `scripts/setup-nginx`) as a real load balancer in front of gateway replicas.

`load_balancer(directory, upstream_ports)` runs `nginx -g 'daemon off;'` with a configuration written into
`directory` (its pid file, logs and temporary files stay there too) listening on a free 127.0.0.1 port, and
proxying everything, round robin, to the replicas on 127.0.0.1. The proxy settings are the ones the README's
"Running several replicas" section recommends; one addition for the tests: every answer says which replica made it
(`X-Upstream: 127.0.0.1:<port>`, several when nginx tried more than one).

nginx passes a request to the next replica on `error` or `timeout` (a connection refused or cut, no answer in
time), except a POST already sent: a POST that reached a replica that then died is answered 502, and the client
retries it, as the app's idempotent calls may. Without nginx the tests fail in CI
(`CI` set) and skip elsewhere, saying so.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pytest

from tests.support.gateway_process import HEALTH_PATH, POLL_SECONDS, free_port

__all__ = ["UPSTREAM_HEADER", "LoadBalancer", "load_balancer", "nginx_binary"]

UPSTREAM_HEADER: Final = "X-Upstream"
READY_SECONDS: Final = 15.0
STOP_SECONDS: Final = 10.0
START_ATTEMPTS: Final = 3


def nginx_binary() -> str:
    """nginx's path; skips (fails in CI) when it is not installed."""
    found = shutil.which("nginx") or next(
        (path for path in ("/usr/sbin/nginx", "/sbin/nginx") if os.access(path, os.X_OK)), None
    )
    if found is None:
        message = "nginx is not installed (`bash scripts/setup` installs it: scripts/setup-nginx)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}: CI must run the multi-replica tests", pytrace=False)
        pytest.skip(message)
    return found


def _configuration(directory: Path, port: int, upstream_ports: Sequence[int]) -> str:
    servers = "\n".join(f"        server 127.0.0.1:{p} max_fails=3 fail_timeout=10s;" for p in upstream_ports)
    # As root, nginx's workers would switch to `nobody`, who cannot write the test's temporary directories.
    user = "user root;" if os.geteuid() == 0 else ""
    return f"""
{user}
worker_processes 1;
pid {directory}/nginx.pid;
error_log {directory}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log {directory}/access.log;
    client_body_temp_path {directory}/client_body;
    proxy_temp_path {directory}/proxy;
    fastcgi_temp_path {directory}/fastcgi;
    uwsgi_temp_path {directory}/uwsgi;
    scgi_temp_path {directory}/scgi;

    upstream payment_gateway {{
{servers}
        keepalive 32;
        keepalive_timeout 10s;
    }}
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 2m;
        location / {{
            proxy_pass http://payment_gateway;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_next_upstream error timeout;
            proxy_connect_timeout 2s;
            proxy_read_timeout 95s;
            add_header {UPSTREAM_HEADER} $upstream_addr always;
        }}
    }}
}}
"""


@dataclass(frozen=True)
class LoadBalancer:
    base_url: str
    """`http://127.0.0.1:<port>`"""
    process: subprocess.Popen[bytes]
    directory: Path

    def error_log(self) -> str:
        path = self.directory / "error.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else "(no error.log)"


def _wait_until_it_answers(balancer: LoadBalancer) -> bool:
    """Polls the replicas' health through nginx until it answers 200; False if nginx exited (port taken…)."""
    deadline = time.monotonic() + READY_SECONDS
    while balancer.process.poll() is None:
        try:
            with urllib.request.urlopen(balancer.base_url + HEALTH_PATH, timeout=2) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"nginx never answered 200 on {HEALTH_PATH}:\n{balancer.error_log()}")
        time.sleep(POLL_SECONDS)  # the poll interval, bounded by the deadline above
    return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGQUIT)  # graceful: finish the requests in flight
        try:
            process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    # Its workers are in its process group (a session of its own): none outlives a master that was killed.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


@contextlib.contextmanager
def load_balancer(directory: Path, upstream_ports: Sequence[int]) -> Iterator[LoadBalancer]:
    """nginx in front of the replicas on `upstream_ports`, answering; stopped on the way out."""
    binary = nginx_binary()
    directory.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, START_ATTEMPTS + 1):
        port = free_port()
        config = directory / "nginx.conf"
        config.write_text(_configuration(directory, port, upstream_ports))
        log = (directory / f"nginx-{attempt}.out").open("wb")
        process = subprocess.Popen(
            [
                binary,
                "-c",
                str(config),
                "-p",
                str(directory),
                "-e",
                str(directory / "error.log"),
                "-g",
                "daemon off;",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        balancer = LoadBalancer(f"http://127.0.0.1:{port}", process, directory)
        try:
            if not _wait_until_it_answers(balancer):
                if attempt < START_ATTEMPTS and "in use" in balancer.error_log():
                    continue
                pytest.fail(f"nginx exited ({process.returncode}):\n{balancer.error_log()}")
            yield balancer
            return
        finally:
            _stop(process)
