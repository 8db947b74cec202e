"""Stable ids (streams/core/identity.py): same input and step, same ids; never the clock."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from streams.core.identity import created_at, delivery_id, record_id, source_event_id


@pytest.mark.parametrize(
    ("event_id", "expected"),
    [("E-1", "E-1"), (None, "order-status-changed/3/42"), ("", "order-status-changed/3/42")],
)
def test_source_event_id(event_id: str | None, expected: str) -> None:
    assert source_event_id(event_id, "order-status-changed", 3, 42) == expected


def test_derived_source_event_id_differs_by_position() -> None:
    ids = {
        source_event_id(None, "t", 0, 1),
        source_event_id(None, "t", 1, 0),
        source_event_id(None, "t", 0, 10),
        source_event_id(None, "u", 0, 1),
    }
    assert len(ids) == 4


def test_delivery_id_is_a_stable_uuid() -> None:
    first = delivery_id("acme", "E-1", 0)
    assert first == delivery_id("acme", "E-1", 0)
    assert uuid.UUID(first).version == 5


@pytest.mark.parametrize(
    "other",
    [
        ("other", "E-1", 0, None),
        ("acme", "E-2", 0, None),
        ("acme", "E-1", 1, None),
        ("acme", "E-1", 0, "replay-1"),
    ],
)
def test_delivery_id_differs_by_each_input(other: tuple) -> None:
    assert delivery_id(*other) != delivery_id("acme", "E-1", 0)


def test_replay_ids_differ_from_each_other_and_are_stable() -> None:
    a = delivery_id("acme", "E-1", 0, "r1")
    assert a == delivery_id("acme", "E-1", 0, "r1")
    assert a != delivery_id("acme", "E-1", 0, "r2")


def test_empty_replay_id_is_no_replay() -> None:
    assert delivery_id("acme", "E-1", 0, "") == delivery_id("acme", "E-1", 0)


def test_fields_cannot_bleed_into_each_other() -> None:
    assert delivery_id("a", "b1", 0) != delivery_id("ab", "1", 0)
    assert delivery_id("a", "E-1", 10) != delivery_id("a", "E-11", 0)


def test_record_ids_by_kind() -> None:
    delivery = delivery_id("acme", "E-1", 0)
    patch, event = record_id(delivery, "patch"), record_id(delivery, "event")
    assert patch != event != delivery
    assert patch == record_id(delivery, "patch")
    assert uuid.UUID(patch).version == 5


@pytest.mark.parametrize(
    ("timestamp", "record_ms", "expected"),
    [
        (datetime(2024, 5, 1, 10, tzinfo=UTC), None, "2024-05-01T10:00:00Z"),
        (datetime(2024, 5, 1, 10, tzinfo=UTC), 0, "2024-05-01T10:00:00Z"),
        (
            datetime(2024, 5, 1, 12, tzinfo=timezone(timedelta(hours=2))),
            None,
            "2024-05-01T10:00:00Z",
        ),
        (datetime(2024, 5, 1, 10), None, "2024-05-01T10:00:00Z"),
        (datetime(2024, 5, 1, 10, 0, 0, 250000, tzinfo=UTC), None, "2024-05-01T10:00:00.250000Z"),
        (None, 1_714_557_600_000, "2024-05-01T10:00:00Z"),
        (None, 1_714_557_600_123, "2024-05-01T10:00:00.123000Z"),
        (None, None, "1970-01-01T00:00:00Z"),
        (None, -1, "1970-01-01T00:00:00Z"),
    ],
)
def test_created_at(timestamp: datetime | None, record_ms: int | None, expected: str) -> None:
    assert created_at(timestamp, record_ms) == expected


def test_created_at_prefers_event_timestamp_over_record_timestamp() -> None:
    stamp = datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert created_at(stamp, 1) == "2024-05-01T10:00:00Z"


def test_the_fast_uuid5_matches_the_standard_library() -> None:
    import uuid

    from streams.core.identity import _NAMESPACE, _uuid5

    for name in ("", "a", "acme\x1fe-1\x1f0", "ü" * 100):
        assert _uuid5(name) == str(uuid.uuid5(_NAMESPACE, name))
