"""Timeouts as Omnium writes them (models/timespan.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from models.timespan import format_timespan, parse_timespan


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("00:00:30", timedelta(seconds=30)),
        ("00:01:00", timedelta(minutes=1)),
        ("01:00:00", timedelta(hours=1)),
        ("0:0:5", timedelta(seconds=5)),
        ("00:00:30.5", timedelta(seconds=30.5)),
        ("00:00:00.250", timedelta(milliseconds=250)),
        ("1.02:03:04", timedelta(days=1, hours=2, minutes=3, seconds=4)),
        ("  00:00:10  ", timedelta(seconds=10)),
        ("30000", timedelta(seconds=30)),
        (" 1500 ", timedelta(milliseconds=1500)),
        (30000, timedelta(seconds=30)),
        (1500.5, timedelta(milliseconds=1500.5)),
        (0, timedelta(0)),
        (timedelta(seconds=7), timedelta(seconds=7)),
    ],
)
def test_parse(value: object, expected: timedelta) -> None:
    assert parse_timespan(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        True,
        False,
        None,
        "",
        "abc",
        "30 seconds",
        "-1",
        "00:30",
        "00:00:30:00",
        "00:00:",
        "1.5",
        "00:00:30.",
        [30],
        {"seconds": 30},
    ],
)
def test_parse_rejects(value: object) -> None:
    with pytest.raises(ValueError):
        parse_timespan(value)


@pytest.mark.parametrize("value", [10**20, "99999999999999999999", float("inf"), float("nan")])
def test_parse_out_of_range_is_a_value_error(value: object) -> None:
    """Absurd numbers must fail validation, not crash with an OverflowError."""
    with pytest.raises(ValueError):
        parse_timespan(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (timedelta(seconds=30), "00:00:30"),
        (timedelta(minutes=5), "00:05:00"),
        (timedelta(hours=2, minutes=3, seconds=4), "02:03:04"),
        (timedelta(milliseconds=1500), "00:00:01.5"),
        (timedelta(milliseconds=250), "00:00:00.25"),
        (timedelta(milliseconds=1), "00:00:00.001"),
        (timedelta(0), "00:00:00"),
        (timedelta(days=1), "24:00:00"),
    ],
)
def test_format(value: timedelta, expected: str) -> None:
    assert format_timespan(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        timedelta(seconds=30),
        timedelta(milliseconds=1500),
        timedelta(milliseconds=1),
        timedelta(seconds=59, microseconds=999600),
        timedelta(seconds=1, microseconds=999999),
        timedelta(minutes=4, seconds=59, milliseconds=999),
    ],
)
def test_format_then_parse_round_trips_to_the_millisecond(value: timedelta) -> None:
    text = format_timespan(value)
    back = parse_timespan(text)
    assert abs(back - value) <= timedelta(milliseconds=0.5), text


@pytest.mark.parametrize(
    ("text", "millis"),
    [("30s", 30_000), ("500ms", 500), ("2m", 120_000), ("1h", 3_600_000), ("1.5S", 1500)],
)
def test_a_number_with_a_unit(text: str, millis: int) -> None:
    assert parse_timespan(text) == timedelta(milliseconds=millis)
