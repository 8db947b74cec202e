"""Putting a dead letter back: the original record whole, plus the link to the dead letter."""

from __future__ import annotations

import base64

import orjson

from streams.core.dead_letters import dead_letter_record
from streams.core.decoder import Rejected
from streams.core.redrive import (
    REDRIVE_HEADER,
    DeadLetterFilter,
    dead_letter_ref,
    original_record,
    redrive_marker,
    refs_redriven,
    tenant_of,
)

VALUE = orjson.dumps({"TenantId": "acme", "status": "Returned"})


def _dead(value: bytes = VALUE, key: bytes | None = b"O-1", headers=None):
    return dead_letter_record(
        Rejected(reason="unknown_tenant", error="no settings"),
        topic="in",
        partition=3,
        offset=17,
        key=key,
        value=value,
        headers=headers if headers is not None else [("traceparent", b"00-ab"), ("bin", b"\xff")],
    )


def test_the_original_record_comes_back_byte_for_byte_with_the_link() -> None:
    dead = _dead()
    ref = dead_letter_ref("dlq", 0, 5)
    original = original_record(dead, ref)
    assert (original.key, original.value) == (b"O-1", VALUE)
    assert original.headers == [
        ("traceparent", b"00-ab"),
        ("bin", b"\xff"),
        (REDRIVE_HEADER, b"dlq/0/5"),
    ]


def test_a_binary_key_and_a_missing_key_survive() -> None:
    assert original_record(_dead(key=b"\x00\xfe"), "r").key == b"\x00\xfe"
    assert original_record(_dead(key=None), "r").key is None


def test_a_second_redrive_replaces_the_earlier_link() -> None:
    dead = _dead(headers=[(REDRIVE_HEADER, b"dlq/0/5")])
    assert original_record(dead, "dlq/1/9").headers == [(REDRIVE_HEADER, b"dlq/1/9")]


def test_tenant_is_read_from_the_original_value_when_it_can_be() -> None:
    assert tenant_of(_dead()) == "acme"
    assert tenant_of(_dead(value=b"{not json")) is None
    assert tenant_of(_dead(value=b"[1]")) is None
    assert tenant_of(_dead(value=b'{"tenantId": 5}')) is None


def test_the_filter() -> None:
    dead = _dead()
    assert DeadLetterFilter().matches(dead, None, "r", 0)
    assert DeadLetterFilter(reasons=frozenset({"unknown_tenant"})).matches(dead, "a", "r", 0)
    assert not DeadLetterFilter(reasons=frozenset({"invalid_json"})).matches(dead, "a", "r", 0)
    assert not DeadLetterFilter(tenants=frozenset({"acme"})).matches(dead, None, "r", 0)
    assert DeadLetterFilter(start_ms=10, end_ms=20).matches(dead, None, "r", 10)
    assert not DeadLetterFilter(start_ms=10, end_ms=20).matches(dead, None, "r", 20)
    assert not DeadLetterFilter(refs=frozenset({"x/0/1"})).matches(dead, None, "x/0/2", 0)


def test_markers_last_value_wins_and_a_tombstone_forgets() -> None:
    first = redrive_marker("dlq/0/1", "in", 2, 40, "2026-01-01T00:00:00Z")
    assert orjson.loads(first)["offset"] == 40
    found = refs_redriven(
        [(b"dlq/0/1", first), (b"dlq/0/2", b"{}"), (b"dlq/0/2", None), (None, b"{}")]
    )
    assert list(found) == ["dlq/0/1"] and found["dlq/0/1"]["partition"] == 2
    assert base64.b64decode(_dead().value) == VALUE
