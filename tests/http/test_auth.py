"""The admin token: closed by default, constant-time comparison, never a crash on odd header bytes."""

from __future__ import annotations

import pytest

from gateway.http.auth import ADMIN_CALLER, caller_from_authorization

TOKEN = "s3cret-admin-token"


@pytest.mark.parametrize(
    ("header", "token", "expected"),
    [
        pytest.param(f"Bearer {TOKEN}", TOKEN, ADMIN_CALLER, id="right-token"),
        pytest.param(f"bearer  {TOKEN} ", TOKEN, ADMIN_CALLER, id="scheme-case-and-spaces"),
        pytest.param("Bearer wrong", TOKEN, None, id="wrong-token"),
        pytest.param(f"Basic {TOKEN}", TOKEN, None, id="other-scheme"),
        pytest.param(f"Bearer {TOKEN}", "", None, id="no-token-configured-means-nobody"),
        pytest.param("Bearer ", "", None, id="empty-against-empty"),
        pytest.param("Bearer \udcff\udcfe", TOKEN, None, id="undecodable-bytes"),
        pytest.param(None, TOKEN, None, id="no-header"),
    ],
)
def test_only_the_configured_bearer_token_is_an_admin(
    header: str | None, token: str, expected: object
) -> None:
    assert caller_from_authorization(header, token) == expected
