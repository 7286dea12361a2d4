"""The README's configuration table is the settings' own documentation: it may not drift."""

from __future__ import annotations

from pathlib import Path

import msgspec

from gateway.metrics.catalogue import CATALOGUE
from gateway.settings import SETTING_DOCS, Settings

README = Path(__file__).resolve().parents[1] / "README.md"


def _default_text(value: object) -> str:
    if value == "":
        return "(empty)"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def test_configuration_table_matches_settings() -> None:
    text = README.read_text(encoding="utf-8")
    table = text.split("<!-- settings:start -->", 1)[1].split("<!-- settings:end -->", 1)[0]
    expected = ["| variable | default | meaning |", "|---|---|---|"] + [
        f"| `{field.name.upper()}` | {_default_text(field.default)} | {SETTING_DOCS[field.name.upper()]} |"
        for field in msgspec.structs.fields(Settings)
    ]
    assert table.strip().splitlines() == expected


def test_first_section_shows_the_two_commands() -> None:
    first_block = README.read_text(encoding="utf-8").split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in first_block.strip().splitlines()]
    assert commands == ["./scripts/serve", "./scripts/test"]
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert "scripts/test" in ci


def test_metrics_table_matches_the_catalogue() -> None:
    text = README.read_text(encoding="utf-8")
    table = text.split("<!-- metrics:start -->", 1)[1].split("<!-- metrics:end -->", 1)[0]
    expected = ["| metric | type | labels |", "|---|---|---|"] + [
        f"| `{spec.name}` | {spec.kind.value} | {', '.join(f'`{label}`' for label in spec.labels) or '—'} |"
        for spec in CATALOGUE
    ]
    assert table.strip().splitlines() == expected
