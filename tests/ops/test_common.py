"""Who an operator's command names in the audit trail."""

from __future__ import annotations

import getpass

import pytest

from gateway.ops.common import operator_name


def test_the_operator_is_the_login_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SUDO_USER", raising=False)
    monkeypatch.setattr(getpass, "getuser", lambda: "alice")
    assert operator_name() == "operator:alice"


def test_under_sudo_the_operator_is_the_person_not_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUDO_USER", "bob")
    monkeypatch.setattr(getpass, "getuser", lambda: "root")
    assert operator_name() == "operator:bob"


def test_without_a_login_name_the_operator_is_unnamed(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_login() -> str:
        raise KeyError("uid 1000 has no passwd entry")

    monkeypatch.delenv("SUDO_USER", raising=False)
    monkeypatch.setattr(getpass, "getuser", no_login)
    assert operator_name() == "operator"
