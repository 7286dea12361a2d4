"""Small helpers shared by the fuzz modules."""

from __future__ import annotations

from hypothesis import control
from hypothesis import strategies as st

__all__ = ["event", "one_in", "usually"]


def one_in(n: int) -> st.SearchStrategy[bool]:
    """True about once in `n` draws. The rare value is last: Hypothesis favours the first one of a sampled list
    (and 0 in an integer range), so `integers(0, n - 1) == 0` would be far more often true than 1 in n."""
    return st.sampled_from([False] * (n - 1) + [True])


def usually(n: int) -> st.SearchStrategy[bool]:
    """False about once in `n` draws."""
    return st.sampled_from([True] * (n - 1) + [False])


def event(name: str) -> None:
    """`hypothesis.event`, and nothing outside a Hypothesis test (the checks are also run on hand-made answers)."""
    if control.currently_in_test_context():
        control.event(name)
