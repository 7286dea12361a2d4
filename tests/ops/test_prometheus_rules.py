"""The alerting rules, their unit tests, the example Prometheus configuration and the Grafana dashboard in ops/.

promtool (Debian's `prometheus` package, installed by `bash scripts/setup`) checks the rules and the configuration
and runs the rules' unit tests (ops/prometheus/alerts.test.yml). Every PromQL expression, in the rules, their tests
and the dashboard, may only name metrics of gateway.metrics.catalogue (with the histogram suffixes), the rules'
own recording rules, and, in the rules, Prometheus's `up`; and only those metrics' labels.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.metrics.catalogue import CATALOGUE, Kind, MetricSpec

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "ops" / "prometheus" / "alerts.yml"
ALERTS_TEST = ROOT / "ops" / "prometheus" / "alerts.test.yml"
CONFIG = ROOT / "ops" / "prometheus" / "prometheus.yml"
DASHBOARD = ROOT / "ops" / "grafana" / "payments-dashboard.json"
JOB = "payment-gateway"
PROMTOOL_TIMEOUT_SECONDS = 120

HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
TARGET_LABELS = frozenset({"job", "instance"})
PROMQL_KEYWORDS = frozenset(
    {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset"}
    | {"inf", "nan"}
)


# --------------------------------------------------------------------------------------------------- promtool


def _promtool(*args: str) -> str:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail(
            "promtool is not installed: run `bash scripts/setup` (it installs Debian's prometheus package)",
            pytrace=False,
        )
    done = subprocess.run(
        [promtool, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=PROMTOOL_TIMEOUT_SECONDS,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"promtool {' '.join(args)} failed ({done.returncode}):\n{output}"
    return output


def test_alerting_rules_are_valid() -> None:
    _promtool("check", "rules", str(ALERTS.relative_to(ROOT)))


def test_alerting_rules_pass_their_unit_tests() -> None:
    assert "SUCCESS" in _promtool("test", "rules", str(ALERTS_TEST.relative_to(ROOT)))


def test_example_prometheus_configuration_is_valid() -> None:
    # Offline: promtool parses the file and the rule files it names; it resolves no target.
    _promtool("check", "config", str(CONFIG.relative_to(ROOT)))
    config = CONFIG.read_text(encoding="utf-8")
    assert re.search(rf"^\s*- job_name: {JOB}\s*$", config, re.MULTILINE)
    assert re.search(r"^\s*metrics_path: /metrics/payments/prometheus\s*$", config, re.MULTILINE)
    assert re.search(r"^rule_files:\s*\n\s*- alerts\.yml\s*$", config, re.MULTILINE)


def test_dashboard_expressions_are_valid_promql(tmp_path: Path) -> None:
    # Each panel query as a recording rule, in a rule file promtool checks (JSON is YAML).
    rules = [
        {"record": f"dashboard:query_{index}", "expr": _without_grafana_variables(expr)}
        for index, expr in enumerate(_dashboard_exprs())
    ]
    rule_file = tmp_path / "dashboard-queries.json"
    rule_file.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}), encoding="utf-8")
    assert f"SUCCESS: {len(rules)} rules found" in _promtool("check", "rules", str(rule_file))


# --------------------------------------------------------------------------------------------------- reading


def _yaml_values(text: str, keys: str) -> list[str]:
    """The values of the `keys` (a regex alternation) entries of a YAML file: inline, quoted, or `|`/`>` blocks.

    A reader for these files' shapes, not a YAML parser (PyYAML is no dependency of the project).
    """
    lines = text.splitlines()
    values: list[str] = []
    for number, line in enumerate(lines):
        found = re.match(rf"^(\s*)(- )?(?:{keys}):\s*(.*?)\s*$", line)
        if found is None:
            continue
        key_column = len(found.group(1)) + (2 if found.group(2) else 0)
        value = found.group(3)
        if value in {"|", "|-", ">", ">-"}:
            block: list[str] = []
            for following in lines[number + 1 :]:
                if following.strip() and len(following) - len(following.lstrip()) <= key_column:
                    break
                block.append(following.strip())
            value = " ".join(part for part in block if part)
        elif len(value) >= 2 and value[0] == value[-1] == "'":
            value = value[1:-1].replace("''", "'")
        elif len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        values.append(value)
    return values


def _rule_exprs() -> list[str]:
    return _yaml_values(ALERTS.read_text(encoding="utf-8"), "expr")


def _rule_test_exprs() -> list[str]:
    return _yaml_values(ALERTS_TEST.read_text(encoding="utf-8"), "expr|series")


def _recording_rules() -> set[str]:
    return set(re.findall(r"^\s*- record:\s*(\S+)\s*$", ALERTS.read_text(encoding="utf-8"), re.MULTILINE))


def _alert_names() -> list[str]:
    return re.findall(r"^\s*- alert:\s*(\S+)\s*$", ALERTS.read_text(encoding="utf-8"), re.MULTILINE)


def _dashboard() -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return dashboard


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def _dashboard_exprs() -> list[str]:
    return [
        target["expr"]
        for panel in _panels(_dashboard()["panels"])
        for target in panel.get("targets", [])
        if "expr" in target
    ]


def _without_grafana_variables(expr: str) -> str:
    return expr.replace("$__rate_interval", "5m").replace("$__range", "6h").replace("$__interval", "1m")


# --------------------------------------------------------------------------------------------------- PromQL names

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_SELECTOR = re.compile(r"(?<![\w:])([a-zA-Z_:][\w:]*)?\s*\{([^}]*)\}")
_MATCHER_LABEL = re.compile(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_IDENTIFIER = re.compile(r"(?<![\w:.$])([a-zA-Z_:][\w:]*+)(?!\s*\()")  # possessive: no shorter name


def _names_in(expr: str) -> tuple[list[str], list[tuple[str | None, set[str]]], set[str]]:
    """Metric names, selectors (name or None, their matchers' label names), and grouping labels of `expr`."""
    text = _STRING.sub('""', _without_grafana_variables(expr))
    selectors = [
        (name or None, set(_MATCHER_LABEL.findall(matchers))) for name, matchers in _SELECTOR.findall(text)
    ]
    grouping = {
        label.strip() for labels in _GROUPING.findall(text) for label in labels.split(",") if label.strip()
    }
    bare = _GROUPING.sub(" ", re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", text))
    names = [name for name in _IDENTIFIER.findall(bare) if name.lower() not in PROMQL_KEYWORDS]
    return names, selectors, grouping


def _spec_of(name: str) -> MetricSpec | None:
    for spec in CATALOGUE:
        if name == spec.name:  # a histogram is exposed only with its suffixes
            return None if spec.kind is Kind.HISTOGRAM else spec
        if spec.kind is Kind.HISTOGRAM and name in {spec.name + suffix for suffix in HISTOGRAM_SUFFIXES}:
            return spec
    return None


def _labels_of(name: str) -> set[str] | None:
    """The labels a series of `name` may have; None for a recording rule (not checked here)."""
    if name == "up":
        return set(TARGET_LABELS)
    spec = _spec_of(name)
    if spec is None:
        return None
    return set(spec.labels) | TARGET_LABELS | ({"le"} if name.endswith("_bucket") else set())


def _check_expressions(source: str, exprs: list[str], allowed_extra: set[str]) -> None:
    assert exprs, f"{source}: no PromQL expression found"
    recording = _recording_rules()
    all_labels = {label for spec in CATALOGUE for label in spec.labels} | TARGET_LABELS | {"le"}
    problems: list[str] = []
    for expr in exprs:
        names, selectors, grouping = _names_in(expr)
        for name in names:
            if _spec_of(name) is None and name not in recording and name not in allowed_extra:
                problems.append(f"unknown metric {name!r} in: {expr}")
        for selected, labels in selectors:
            if selected is None:
                problems.append(f"selector without a metric name in: {expr}")
                continue
            allowed = _labels_of(selected)
            if allowed is not None and not labels <= allowed | {"__name__"}:
                problems.append(f"{selected} has no label {sorted(labels - allowed)} in: {expr}")
        if not grouping <= all_labels:
            problems.append(f"grouping by unknown labels {sorted(grouping - all_labels)} in: {expr}")
    assert not problems, f"{source}:\n" + "\n".join(problems)


def test_the_name_reader_sees_metrics_labels_and_groupings() -> None:
    names, selectors, grouping = _names_in(
        'histogram_quantile(0.95, sum by (le, procedure) (rate(gateway_x_bucket{procedure=~"stripe\\\\..+"}'
        "[$__rate_interval]))) / on (instance) group_left (version) gateway_info or vector(0) > 1e3"
    )
    assert names == ["gateway_x_bucket", "gateway_info"]
    assert selectors == [("gateway_x_bucket", {"procedure"})]
    assert grouping == {"le", "procedure", "instance", "version"}
    assert _spec_of("gateway_procedure_call_duration_seconds") is None
    assert _spec_of("gateway_procedure_call_duration_seconds_bucket") is not None
    assert _spec_of("gateway_procedure_calls_total_count") is None


def test_rules_use_only_catalogue_metrics_recording_rules_and_up() -> None:
    exprs = _rule_exprs()
    assert len(exprs) == len(_recording_rules()) + len(_alert_names())
    _check_expressions(ALERTS.name, exprs, {"up"})
    up_selectors = [expr for expr in exprs if re.search(r"\bup\b", expr)]
    assert up_selectors
    assert all(f'up{{job="{JOB}"}}' in expr for expr in up_selectors), up_selectors


def test_rule_tests_use_only_catalogue_metrics_recording_rules_and_up() -> None:
    _check_expressions(ALERTS_TEST.name, _rule_test_exprs(), {"up"})


def test_dashboard_uses_only_catalogue_metrics_and_recording_rules() -> None:
    _check_expressions(DASHBOARD.name, _dashboard_exprs(), set())


# --------------------------------------------------------------------------------------------------- shape


def test_every_alert_has_a_severity_a_for_and_annotations() -> None:
    chunks = re.split(r"^\s*- alert:", ALERTS.read_text(encoding="utf-8"), flags=re.MULTILINE)[1:]
    assert len(chunks) == len(_alert_names()) >= 8
    for chunk in chunks:
        name = chunk.split()[0]
        assert re.search(r"^\s*for: \d+[smh]\s*$", chunk, re.MULTILINE), name
        assert re.search(r"^\s*severity: (critical|warning)\s*$", chunk, re.MULTILINE), name
        assert re.search(r"^\s*summary: \S", chunk, re.MULTILINE), name
        assert re.search(r"^\s*description: \S", chunk, re.MULTILINE), name


def test_every_alert_is_tested_firing_and_silent() -> None:
    text = ALERTS_TEST.read_text(encoding="utf-8")
    cases = re.split(r"^\s*- alertname:", text, flags=re.MULTILINE)[1:]
    firing: set[str] = set()
    silent: set[str] = set()
    for case in cases:
        name = case.split()[0]
        (silent if re.search(r"exp_alerts: \[\]", case) else firing).add(name)
    alerts = set(_alert_names())
    assert alerts <= firing, f"never shown firing: {sorted(alerts - firing)}"
    assert alerts <= silent, f"never shown silent: {sorted(alerts - silent)}"


def test_dashboard_is_importable() -> None:
    dashboard = _dashboard()
    assert dashboard["title"]
    assert dashboard["uid"]
    variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    panels = list(_panels(dashboard["panels"]))
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"], panel["title"]
