"""The log scan over the whole e2e suite: every JSON log line any e2e test produced (in-process gateways write to
the captured stdout) is searched for secrets, tokens, client secrets, e-mail addresses and card numbers. A test
whose logs leak fails, naming the kind of leak and the event, whatever the test itself asserted."""

from __future__ import annotations

from collections.abc import Generator

import msgspec
import pytest

from tests.support.leak_scan import leaks_in


def _log_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("{") and '"event"' in line]


def _event(line: str) -> str:
    try:
        return str(msgspec.json.decode(line).get("event"))
    except msgspec.DecodeError:
        return "?"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, object, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    if report.failed:
        return
    # Each phase's report carries the output of the phases before it too: scan this phase's own sections only.
    output = "\n".join(text for name, text in report.sections if name.endswith(f" {report.when}"))
    found = [
        f"{kind} in a `{_event(line)}` line" for line in _log_lines(output) for kind, _ in leaks_in(line)
    ]
    if found:
        report.outcome = "failed"
        report.longrepr = f"log scan ({report.when}): " + "; ".join(sorted(set(found)))
