"""Payment QR tokens: the exact format, round trips, key rotation, tampering, and that arbitrary input only ever
raises `QrTokenError` with one of its three reasons."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from typing import Any, Final, get_args

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.qr import tokens
from gateway.qr.tokens import (
    MAX_ORDER_ID_LENGTH,
    MAX_TOKEN_LENGTH,
    QrSigner,
    QrSigningDisabled,
    QrTokenError,
    QrTokenFailure,
    VerifiedToken,
    key_id,
)
from gateway.settings import Settings
from schemas.stripe import ORDER_ID_PATTERN

# 32+ characters each, as the settings require; nothing like a Stripe key.
OLD_KEY: Final = "Jd8wQ2rT6yU1iO9pA3sD5fG7hJ0kL4zXcV"
NEW_KEY: Final = "mN3bV6cX9zL2kJ5hG8fD1sA4pO7iU0yTrE"
FOREIGN_KEY: Final = "Qw7Er4Ty1Ui8Op5As2Df9Gh6Jk3Lz0XcVb"
ORDER: Final = "ord_1PZk3q2eZvKYlo2C"
TOKEN_SHAPE: Final = re.compile(r"P1\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{22}")

# Order ids as the procedures accept them (schemas.stripe.OrderId): any script, spaces and punctuation included.
order_ids = st.text(min_size=1, max_size=MAX_ORDER_ID_LENGTH).filter(
    lambda text: re.match(ORDER_ID_PATTERN, text) is not None
)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(key: str, kid: str, payload: str, version: str = "P1") -> str:
    """A token built by hand from the documented format, with any key, key id and payload."""
    signed = f"{version}.{kid}.{payload}"
    tag = hmac.new(key.encode(), signed.encode(), hashlib.sha256).digest()[:16]
    return f"{signed}.{b64(tag)}"


def reason(signer: QrSigner, token: Any) -> QrTokenFailure:
    with pytest.raises(QrTokenError) as raised:
        signer.verify(token)
    return raised.value.reason


def test_the_token_is_exactly_the_documented_format() -> None:
    expected_kid = b64(hmac.new(NEW_KEY.encode(), b"qr-key-id", hashlib.sha256).digest())[:6]
    order = "Commande 42 / été & co"
    token = QrSigner([NEW_KEY]).sign(order)
    assert token == forge(NEW_KEY, expected_kid, b64(order.encode("utf-8")))
    assert key_id(NEW_KEY) == expected_kid
    assert TOKEN_SHAPE.fullmatch(token)


@settings(max_examples=300, deadline=None)
@given(order_ids)
def test_any_order_id_round_trips(order_id: str) -> None:
    signer = QrSigner([NEW_KEY, OLD_KEY])
    token = signer.sign(order_id)
    assert signer.verify(token) == VerifiedToken(order_id=order_id, key_id=key_id(NEW_KEY))
    assert TOKEN_SHAPE.fullmatch(token)  # URL-safe, one QR byte-mode character per character
    assert len(token) <= MAX_TOKEN_LENGTH
    assert signer.sign(order_id) == token  # deterministic


def test_signing_is_deterministic_per_key_and_order() -> None:
    assert QrSigner([NEW_KEY]).sign(ORDER) == QrSigner([NEW_KEY, OLD_KEY]).sign(ORDER)
    assert QrSigner([NEW_KEY]).sign(ORDER) != QrSigner([OLD_KEY]).sign(ORDER)
    assert QrSigner([NEW_KEY]).sign(ORDER) != QrSigner([NEW_KEY]).sign(ORDER + "1")


def test_the_token_shows_no_order_id_in_clear_but_holds_nothing_else() -> None:
    token = QrSigner([NEW_KEY]).sign(ORDER)
    assert ORDER not in token
    assert len(token) == len("P1.") + 6 + 1 + len(b64(ORDER.encode())) + 1 + 22


@pytest.mark.parametrize("order_id", ["", "x" * (MAX_ORDER_ID_LENGTH + 1), "a\nb", "tab\there", "nul\x00"])
def test_sign_refuses_what_is_not_an_order_id(order_id: str) -> None:
    with pytest.raises(ValueError, match="order id"):
        QrSigner([NEW_KEY]).sign(order_id)


def test_the_longest_token_fits_the_cap_exactly() -> None:
    signer = QrSigner([NEW_KEY])
    widest = "\U0001d11e" * MAX_ORDER_ID_LENGTH  # 200 characters of 4 UTF-8 bytes each
    token = signer.sign(widest)
    assert len(token) == MAX_TOKEN_LENGTH
    assert signer.verify(token).order_id == widest
    assert reason(signer, token + "A") == "malformed"  # one character over: refused unread


def test_a_huge_string_is_refused_at_once() -> None:
    signer = QrSigner([NEW_KEY])
    huge = "P1." + key_id(NEW_KEY) + "." + "A" * 50_000_000 + "." + "A" * 22
    started = time.perf_counter()
    assert reason(signer, huge) == "malformed"
    assert time.perf_counter() - started < 0.05  # a length check, not a regex over 50 MB


# -- key rotation -------------------------------------------------------------------------------------------------


def test_rolling_the_key_keeps_issued_codes_valid_until_the_old_key_is_dropped() -> None:
    issued = QrSigner.from_secret(OLD_KEY).sign(ORDER)
    rolling = QrSigner.from_secret(f"{NEW_KEY},{OLD_KEY}")
    assert rolling.verify(issued) == VerifiedToken(order_id=ORDER, key_id=key_id(OLD_KEY))
    fresh = rolling.sign(ORDER)
    assert fresh != issued
    assert rolling.verify(fresh).key_id == key_id(NEW_KEY) == rolling.key_id
    rolled = QrSigner.from_secret(NEW_KEY)
    assert rolled.verify(fresh).order_id == ORDER
    assert reason(rolled, issued) == "unknown_key"


def test_qr_secret_is_read_as_the_settings_list_it() -> None:
    signer = QrSigner.from_settings(Settings(qr_secret=f" {NEW_KEY} , {OLD_KEY},"))
    assert signer.enabled
    assert signer.key_ids == (key_id(NEW_KEY), key_id(OLD_KEY))
    assert signer.key_id == key_id(NEW_KEY)
    assert QrSigner([NEW_KEY, NEW_KEY]).key_ids == (key_id(NEW_KEY),)  # listed twice: one key


def test_key_ids_are_short_stable_and_distinct() -> None:
    assert key_id(NEW_KEY) == key_id(NEW_KEY)
    assert re.fullmatch(r"[A-Za-z0-9_-]{6}", key_id(NEW_KEY))
    assert len({key_id(key) for key in (OLD_KEY, NEW_KEY, FOREIGN_KEY)}) == 3


def test_keys_that_share_a_key_id_are_both_tried(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokens, "key_id", lambda key: "SameId")
    old_token = QrSigner([OLD_KEY]).sign(ORDER)
    both = QrSigner([NEW_KEY, OLD_KEY])
    assert both.verify(old_token) == VerifiedToken(order_id=ORDER, key_id="SameId")
    assert both.verify(both.sign(ORDER)).order_id == ORDER
    assert reason(both, QrSigner([FOREIGN_KEY]).sign(ORDER)) == "bad_signature"


# -- refusals -----------------------------------------------------------------------------------------------------


def parts(token: str) -> list[str]:
    return token.split(".")


def test_a_changed_payload_is_a_bad_signature() -> None:
    signer = QrSigner([NEW_KEY])
    version, kid, _, tag = parts(signer.sign(ORDER))
    other = b64(b"ord_somebody_else")
    assert reason(signer, f"{version}.{kid}.{other}.{tag}") == "bad_signature"


def test_a_changed_tag_is_a_bad_signature() -> None:
    signer = QrSigner([NEW_KEY])
    token = signer.sign(ORDER)
    for position in range(len(token) - 22, len(token)):
        flipped = "B" if token[position] == "A" else "A"
        assert reason(signer, token[:position] + flipped + token[position + 1 :]) == "bad_signature"


def test_a_tag_spelt_another_way_is_refused() -> None:
    # 22 base64 characters carry 132 bits for 128: a lenient decoder maps 16 spellings of the last character to
    # the same bytes. Only the canonical one verifies, so a code has exactly one valid spelling.
    signer = QrSigner([NEW_KEY])
    token = signer.sign(ORDER)
    last = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".index(token[-1])
    alias = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[last ^ 1]
    assert base64.urlsafe_b64decode(token[-22:] + "==") == base64.urlsafe_b64decode(
        token[-22:-1] + alias + "=="
    )
    assert reason(signer, token[:-1] + alias) == "bad_signature"


def test_the_key_id_is_authenticated() -> None:
    signer = QrSigner([NEW_KEY, OLD_KEY])
    version, _, payload, tag = parts(signer.sign(ORDER))
    # Naming the other configured key: that key's tag differs, so the claim is refused.
    assert reason(signer, f"{version}.{key_id(OLD_KEY)}.{payload}.{tag}") == "bad_signature"
    assert reason(signer, f"{version}.{key_id(FOREIGN_KEY)}.{payload}.{tag}") == "unknown_key"


@pytest.mark.parametrize("version", ["P2", "P0", "p1", "P", "P1P1", ""])
def test_another_version_is_malformed(version: str) -> None:
    signer = QrSigner([NEW_KEY])
    token = forge(NEW_KEY, key_id(NEW_KEY), b64(ORDER.encode()), version=version)
    assert reason(signer, token) == "malformed"
    # and P1's tag does not carry over to another version (the version is inside the MAC input)
    genuine_tag = parts(signer.sign(ORDER))[3]
    assert reason(signer, f"{version}.{key_id(NEW_KEY)}.{b64(ORDER.encode())}.{genuine_tag}") == "malformed"


def test_a_foreign_key_is_unknown_and_cannot_borrow_a_key_id() -> None:
    signer = QrSigner([NEW_KEY])
    assert reason(signer, QrSigner([FOREIGN_KEY]).sign(ORDER)) == "unknown_key"
    borrowed = forge(FOREIGN_KEY, key_id(NEW_KEY), b64(ORDER.encode()))
    assert TOKEN_SHAPE.fullmatch(borrowed)
    assert reason(signer, borrowed) == "bad_signature"


@pytest.mark.parametrize(
    "token",
    [
        "",
        "P1",
        "P1...",
        "P1.abcdef",
        "P1.abcdef.b3Jk",
        "P1.abcde.b3Jk." + "A" * 22,  # key id one short
        "P1.abcdefg.b3Jk." + "A" * 22,  # key id one long
        "P1.abcdef.b3Jk." + "A" * 21,  # tag one short
        "P1.abcdef.b3Jk." + "A" * 23,  # tag one long
        "P1.abcdef.b3Jk." + "A" * 22 + ".extra",
        "P1.abcdef.b3Jk." + "A" * 22 + "\n",
        " P1.abcdef.b3Jk." + "A" * 22,
        "P1.abcdef.b3J=." + "A" * 22,  # padding is not part of the format
        "P1.abcdef.b3Jk+." + "A" * 22,  # standard base64, not base64url
        "P1.abcdef.bé3Jk." + "A" * 22,
        "P1.abcdef.b." + "A" * 22,  # a length no base64 encoder produces
        "P1.abcdef.b3J." + "A" * 22,  # non-canonical: unused bits set (b"or" is b3I)
        "P1.abcdef.." + "A" * 22,
    ],
)
def test_what_is_not_a_token_is_malformed(token: str) -> None:
    assert reason(QrSigner([NEW_KEY]), token) == "malformed"


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\xff\xfe",  # not UTF-8
        b"\xed\xa0\x80",  # a UTF-8-encoded surrogate
        b"line\nbreak",  # a control character
        b"x" * (MAX_ORDER_ID_LENGTH + 1),
    ],
)
def test_a_genuinely_signed_non_order_id_is_malformed(payload: bytes) -> None:
    # Only a key holder could make these; verify still refuses what sign never makes.
    token = forge(NEW_KEY, key_id(NEW_KEY), b64(payload))
    assert reason(QrSigner([NEW_KEY]), token) == "malformed"


@pytest.mark.parametrize("value", [None, b"P1.abcdef.b3Jk.AAAAAAAAAAAAAAAAAAAAAA", 42, ["P1"]])
def test_a_value_that_is_not_a_string_is_malformed(value: object) -> None:
    assert reason(QrSigner([NEW_KEY]), value) == "malformed"


def test_every_reason_has_a_fixed_message_that_quotes_nothing() -> None:
    signer = QrSigner([NEW_KEY])
    cases = {
        "malformed": "P1.secretish",
        "unknown_key": QrSigner([FOREIGN_KEY]).sign(ORDER),
        "bad_signature": forge(FOREIGN_KEY, key_id(NEW_KEY), b64(ORDER.encode())),
    }
    assert set(cases) == set(get_args(QrTokenFailure))
    for expected, token in cases.items():
        with pytest.raises(QrTokenError) as raised:
            signer.verify(token)
        assert raised.value.reason == expected
        message = str(raised.value)
        assert message
        for secret in (token, *parts(token), NEW_KEY, key_id(NEW_KEY), ORDER):
            assert secret not in message


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=300) | st.binary(max_size=100).map(lambda data: data.decode("latin-1")))
def test_arbitrary_text_raises_only_the_typed_error(text: str) -> None:
    # Any other exception escapes pytest.raises and fails the test; a random text that verified would be a
    # forged 128-bit tag.
    assert reason(QrSigner([NEW_KEY, OLD_KEY]), text) in get_args(QrTokenFailure)


@settings(max_examples=500, deadline=None)
@given(
    order_ids,
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=400), st.sampled_from("A_-.=+/ \x00é\n1P")),
        min_size=1,
        max_size=4,
    ),
)
def test_mutated_tokens_raise_only_the_typed_error(order_id: str, edits: list[tuple[int, str]]) -> None:
    signer = QrSigner([NEW_KEY, OLD_KEY])
    token = signer.sign(order_id)
    mutated = token
    for position, character in edits:
        at = position % (len(mutated) + 1)
        mutated = mutated[:at] + character + mutated[at + 1 :]
    if mutated == token:  # the edits wrote back the characters that were there
        assert signer.verify(mutated).order_id == order_id
    else:
        assert reason(signer, mutated) in get_args(QrTokenFailure)


# -- configuration ------------------------------------------------------------------------------------------------


def test_without_a_key_nothing_is_signed_or_verified() -> None:
    for signer in (QrSigner([]), QrSigner.from_secret(""), QrSigner.from_secret(" , ")):
        assert not signer.enabled
        assert signer.key_id is None
        with pytest.raises(QrSigningDisabled):
            signer.sign(ORDER)
        assert reason(signer, QrSigner([NEW_KEY]).sign(ORDER)) == "unknown_key"


def test_a_short_key_is_refused_without_being_quoted() -> None:
    short = "too-short-key-31-characters-xyz"
    assert len(short) == 31
    with pytest.raises(ValueError, match="key 2 is too short") as raised:
        QrSigner([NEW_KEY, short])
    assert short not in str(raised.value)


def test_the_signer_never_shows_its_keys() -> None:
    signer = QrSigner([NEW_KEY, OLD_KEY])
    assert NEW_KEY not in repr(signer)
    assert OLD_KEY not in repr(signer)
    assert key_id(NEW_KEY) in repr(signer)


@pytest.mark.parametrize("order_id", ["a\u00a0b", "a\u200bb", "a\u3000b", "a\u2028b", "a\u00adb"])
def test_every_order_id_the_procedures_accept_gets_a_code(order_id: str) -> None:
    """No-break and zero-width spaces, soft hyphens and line separators are valid order ids: `str.isprintable`
    refuses them, the procedures' rule does not, and a paid order must never be denied its code."""
    assert re.match(ORDER_ID_PATTERN, order_id)
    signer = QrSigner([NEW_KEY])
    assert signer.verify(signer.sign(order_id)).order_id == order_id
