"""The payment state machine: every move a report from Stripe may make, and every one it may not."""

from __future__ import annotations

import itertools

import pytest

from gateway.payments.states import FINAL, REOPEN, TRANSITIONS, UNFINISHED, can_move
from gateway.store import PaymentStatus as S

WAITING = [
    S.REQUIRES_PAYMENT_METHOD,
    S.REQUIRES_CONFIRMATION,
    S.REQUIRES_ACTION,
    S.PROCESSING,
    S.REQUIRES_CAPTURE,
]

ALLOWED = (
    {(S.CREATING, new) for new in [*WAITING, S.SUCCEEDED, S.CANCELED]}
    | {(old, new) for old in WAITING for new in [*WAITING, S.SUCCEEDED, S.CANCELED]}
    | {(S.SUCCEEDED, S.SUCCEEDED), (S.CANCELED, S.CANCELED)}
)
"""Written out by hand, apart from the module's own table, so a change to one shows up against the other."""


@pytest.mark.parametrize(("current", "reported"), list(itertools.product(S, S)))
def test_every_move_is_allowed_or_forbidden_as_specified(current: S, reported: S) -> None:
    assert can_move(current, reported) == ((current, reported) in ALLOWED)


def test_a_payment_is_never_undone_and_a_cancellation_never_revived_by_a_report() -> None:
    for final in FINAL:
        assert TRANSITIONS[final] == {final}
    assert not can_move(S.SUCCEEDED, S.REQUIRES_PAYMENT_METHOD)  # a late payment_failed
    assert not can_move(S.SUCCEEDED, S.CANCELED)
    assert not can_move(S.CANCELED, S.SUCCEEDED)


def test_no_report_moves_an_order_back_to_creating() -> None:
    assert all(not can_move(status, S.CREATING) for status in S)
    assert REOPEN == (S.CANCELED, S.CREATING)  # the gateway's own move, never a report's


def test_every_status_has_its_row() -> None:
    assert set(TRANSITIONS) == set(S)
    assert set(WAITING) == UNFINISHED
