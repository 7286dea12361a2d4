"""Request ids: the seed's `pay_<epoch ms>_<9 base-36 chars>`, unique, every suffix character in use."""

from __future__ import annotations

import re
import time

from gateway.http.observe import new_request_id

_FORMAT = re.compile(r"pay_(\d{13})_([0-9a-z]{9})")


def test_request_ids_have_the_seeds_format_and_the_current_time() -> None:
    before = time.time_ns() // 1_000_000
    request_id = new_request_id()
    after = time.time_ns() // 1_000_000
    match = _FORMAT.fullmatch(request_id)
    assert match is not None, request_id
    assert before <= int(match.group(1)) <= after


def test_every_position_of_the_suffix_takes_every_base36_character() -> None:
    suffixes = [new_request_id().rsplit("_", 1)[1] for _ in range(5000)]
    assert len(set(suffixes)) == len(suffixes)
    for position in range(9):
        assert {suffix[position] for suffix in suffixes} == set("0123456789abcdefghijklmnopqrstuvwxyz"), (
            position
        )
