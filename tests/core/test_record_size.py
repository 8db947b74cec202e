"""Record sizes and limits (streams/core/record_size.py) agree with the client's own check."""

from __future__ import annotations

from aiokafka.record.default_records import DefaultRecordBatchBuilder
from hypothesis import given
from hypothesis import strategies as st

from streams.core.record_size import (
    FAUST_DEFAULT_MAX_REQUEST_SIZE,
    KAFKA_DEFAULT_MAX_MESSAGE_BYTES,
    MAX_KEY_BYTES,
    headers_overhead,
    output_key,
    record_limit,
    record_size,
    value_budget,
)


@given(
    key=st.one_of(st.none(), st.binary(max_size=300)),
    value=st.one_of(st.none(), st.binary(max_size=3000)),
    headers=st.lists(
        st.tuples(st.text(max_size=20), st.one_of(st.none(), st.binary(max_size=50))), max_size=5
    ),
)
def test_never_below_aiokafka_s_estimate(key, value, headers) -> None:
    assert record_size(key, value, headers) >= DefaultRecordBatchBuilder.estimate_size_in_bytes(
        key, value, headers
    )


def test_the_limit_is_the_smaller_of_the_producer_s_and_the_topic_s() -> None:
    assert record_limit(FAUST_DEFAULT_MAX_REQUEST_SIZE, {}) == 1_000_000
    assert record_limit(6_000_000, {}) == KAFKA_DEFAULT_MAX_MESSAGE_BYTES
    assert record_limit(6_000_000, {"max.message.bytes": "5242880"}) == 5_242_880
    assert record_limit(1_000_000, {"max.message.bytes": "100000"}) == 100_000


def test_a_value_of_the_budget_makes_a_record_of_the_limit() -> None:
    headers = [("returnhook-replay", b"r-1")]
    budget = value_budget(100_000, b"key", headers)
    assert record_size(b"key", b"v" * budget, headers) == 100_000
    assert headers_overhead(headers) == record_size(None, None, headers) - record_size(None, None)


def test_a_key_too_long_to_carry_is_replaced_by_its_digest() -> None:
    assert output_key(None) is None
    assert output_key(b"o-1") == b"o-1"
    long = b"k" * (MAX_KEY_BYTES + 1)
    assert output_key(long).startswith(b"sha256:") and len(output_key(long)) == 71
