"""Dead letters fitted to a byte budget (streams/core/dead_letters.py): the envelope is kept,
the value is cut and marked, and the encoding never exceeds the budget."""

from __future__ import annotations

import base64
import hashlib
import os

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.core.dead_letters import (
    ENVELOPE_TEXT_CAP,
    MIN_DEAD_LETTER_BYTES,
    dead_letter_record,
    encode_dead_letter,
)
from streams.core.decoder import Rejected, decode

EXAMPLES = int(os.environ.get("HOSTILE_EXAMPLES", "200"))
REJECTED = Rejected(reason="invalid_json", error="the value is not JSON: unexpected character")


def letter(value: bytes, max_bytes: int | None, key: bytes | None = b"k", headers=None):
    return dead_letter_record(
        REJECTED,
        topic="order-status-changed",
        partition=3,
        offset=17,
        key=key,
        value=value,
        headers=headers or [("traceparent", b"00-abc-01")],
        max_bytes=max_bytes,
    )


def test_a_record_that_fits_is_whole_with_its_size_and_digest() -> None:
    value = b"not json at all"
    record = letter(value, max_bytes=1_000_000)
    assert record.truncated == []
    assert base64.b64decode(record.value) == value
    assert record.value_size == len(value)
    assert record.value_sha256 == hashlib.sha256(value).hexdigest()


def test_the_issue_s_760_kb_value_is_cut_to_the_budget_with_the_envelope_kept() -> None:
    value = b"{" + os.urandom(760_000 - 1)  # 1 013 556 bytes as a whole dead letter
    whole = encode_dead_letter(letter(value, max_bytes=None))
    assert len(whole) > 1_000_000
    record = letter(value, max_bytes=999_000)
    encoded = encode_dead_letter(record)
    assert len(encoded) <= 999_000
    assert record.truncated == ["value"]
    kept = base64.b64decode(record.value)
    assert value.startswith(kept) and len(kept) > 700_000
    assert (record.value_size, record.value_sha256) == (
        760_000,
        hashlib.sha256(value).hexdigest(),
    )
    assert (record.reason, record.topic, record.partition, record.offset, record.key) == (
        "invalid_json",
        "order-status-changed",
        3,
        17,
        "k",
    )
    assert record.headers == {"traceparent": "00-abc-01"}


def test_a_record_too_large_is_dead_lettered_in_the_cut_form() -> None:
    value = b"x" * 3_000_000
    rejected = decode(value)
    assert isinstance(rejected, Rejected) and rejected.reason == "record_too_large"
    record = dead_letter_record(
        rejected,
        topic="t",
        partition=0,
        offset=0,
        key=None,
        value=value,
        headers=None,
        max_bytes=1_000_000,
    )
    assert len(encode_dead_letter(record)) <= 1_000_000
    assert record.truncated == ["value"] and record.value_size == 3_000_000


def test_a_hostile_envelope_is_cut_too_and_says_which_fields() -> None:
    headers = [(f"h{i}", b"v" * 5000) for i in range(400)]  # 2 MB of headers
    record = letter(b"v" * 10, max_bytes=100_000, key=b"k" * 500_000, headers=headers)
    assert len(encode_dead_letter(record)) <= 100_000
    assert set(record.truncated) == {"key", "headers"}  # the value itself fits once they are cut
    assert base64.b64decode(record.value) == b"v" * 10
    assert record.key == "k" * ENVELOPE_TEXT_CAP
    assert all(len(v) <= ENVELOPE_TEXT_CAP for v in record.headers.values())


def test_a_budget_below_the_minimum_is_refused() -> None:
    with pytest.raises(ValueError, match="at least"):
        letter(b"x" * 100_000, max_bytes=MIN_DEAD_LETTER_BYTES - 1)


texts = st.text(max_size=3000)
blobs = st.one_of(st.binary(max_size=3000), st.builds(lambda n: b"\xff" * n, st.integers(0, 2**20)))


@settings(max_examples=EXAMPLES, deadline=None)
@given(
    value=blobs,
    key=st.one_of(st.none(), blobs),
    headers=st.lists(st.tuples(texts, st.one_of(st.none(), blobs)), max_size=50),
    error=st.text(max_size=20_000),
    budget=st.integers(MIN_DEAD_LETTER_BYTES, 2**21),
)
def test_any_record_fits_any_budget_and_keeps_what_it_can(value, key, headers, error, budget):
    record = dead_letter_record(
        Rejected(reason="invalid_event", error=error),
        topic="in",
        partition=0,
        offset=1,
        key=key,
        value=value,
        headers=headers,
        max_bytes=budget,
    )
    encoded = encode_dead_letter(record)
    assert len(encoded) <= budget
    assert orjson.loads(encoded)["valueSha256"] == hashlib.sha256(value).hexdigest()
    kept = base64.b64decode(record.value)
    assert value.startswith(kept)
    assert (kept == value) == ("value" not in record.truncated)
    if not record.truncated:
        assert record == dead_letter_record(
            Rejected(reason="invalid_event", error=error),
            topic="in",
            partition=0,
            offset=1,
            key=key,
            value=value,
            headers=headers,
        )
