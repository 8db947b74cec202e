"""`returnhook replay`'s pure parts: --from/--to parsing, the window, replay ids, masked URLs."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from streams.ops.redaction import mask_url
from streams.replay.window import (
    ReplayTimeError,
    format_time,
    new_replay_id,
    parse_time,
    resolve_window,
    to_ms,
)

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "ago"),
    [
        ("45s", timedelta(seconds=45)),
        ("30m", timedelta(minutes=30)),
        ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        ("1w", timedelta(weeks=1)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1.5h", timedelta(minutes=90)),
        ("2H", timedelta(hours=2)),
        (" 2h ", timedelta(hours=2)),
        ("2 h", timedelta(hours=2)),
        ("2h ago", timedelta(hours=2)),
        ("0s", timedelta(0)),
        ("now", timedelta(0)),
    ],
)
def test_ages_count_back_from_now(text: str, ago: timedelta) -> None:
    assert parse_time(text, now=NOW) == NOW - ago


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-01T10:00:00Z", datetime(2026, 3, 1, 10, tzinfo=UTC)),
        ("2026-03-01T10:00:00+00:00", datetime(2026, 3, 1, 10, tzinfo=UTC)),
        ("2026-03-01T11:00:00+01:00", datetime(2026, 3, 1, 10, tzinfo=UTC)),
        ("2026-03-01 10:00", datetime(2026, 3, 1, 10, tzinfo=UTC)),
        ("2026-03-01T10:00:00.250Z", datetime(2026, 3, 1, 10, 0, 0, 250000, tzinfo=UTC)),
        ("2026-03-01", datetime(2026, 3, 1, tzinfo=UTC)),
        ("20260301T100000Z", datetime(2026, 3, 1, 10, tzinfo=UTC)),
    ],
)
def test_iso_8601_without_an_offset_is_utc(text: str, expected: datetime) -> None:
    parsed = parse_time(text, now=NOW)
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)


def test_results_are_utc_even_for_a_local_now() -> None:
    local_now = NOW.astimezone(timezone(timedelta(hours=2)))
    parsed = parse_time("1h", now=local_now)
    assert parsed == NOW - timedelta(hours=1)
    assert parsed.tzinfo == UTC


@pytest.mark.parametrize("text", ["", "  ", "2", "2x", "-2h", "h", "10:00", "yesterday", "2h-"])
def test_anything_else_is_refused_with_the_accepted_forms(text: str) -> None:
    with pytest.raises(ReplayTimeError, match=r"ISO 8601 .* or an age"):
        parse_time(text, now=NOW)


def test_a_window_from_an_age_to_an_age() -> None:
    start, end = resolve_window("2h", "1h", now=NOW)
    assert (start, end) == (NOW - timedelta(hours=2), NOW - timedelta(hours=1))


def test_no_to_means_up_to_now() -> None:
    assert resolve_window("2026-03-01T10:00:00Z", None, now=NOW) == (
        datetime(2026, 3, 1, 10, tzinfo=UTC),
        None,
    )


@pytest.mark.parametrize(
    ("start", "end"),
    [("1h", "2h"), ("2026-03-01T10:00:00Z", "2026-03-01T09:00:00Z"), ("1h", "1h")],
)
def test_to_before_or_at_from_is_an_error(start: str, end: str) -> None:
    with pytest.raises(ReplayTimeError, match=r"--to .* is not after --from"):
        resolve_window(start, end, now=NOW)


def test_from_in_the_future_is_an_error() -> None:
    with pytest.raises(ReplayTimeError, match="in the future"):
        resolve_window("2026-03-02T00:00:00Z", None, now=NOW)


def test_a_to_in_the_future_is_fine() -> None:
    assert resolve_window("1h", "2026-03-02", now=NOW)[1] == datetime(2026, 3, 2, tzinfo=UTC)


def test_times_print_as_utc_and_convert_to_kafka_milliseconds() -> None:
    moment = datetime(2026, 3, 1, 11, 0, 0, tzinfo=timezone(timedelta(hours=1)))
    assert format_time(moment) == "2026-03-01T10:00:00Z"
    assert to_ms(moment) == int(datetime(2026, 3, 1, 10, tzinfo=UTC).timestamp()) * 1000


def test_replay_ids_carry_the_utc_time_and_differ() -> None:
    first, second = new_replay_id(NOW), new_replay_id(NOW)
    assert re.fullmatch(r"replay-20260301T120000Z-[0-9a-f]{6}", first)
    assert first != second


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://erp.example.com/returns", "https://erp.example.com/returns"),
        ("https://user:s3cret@erp.example.com/r", "https://***@erp.example.com/r"),
        ("https://token@erp.example.com:8443/r", "https://***@erp.example.com:8443/r"),
        ("https://erp.example.com/r?apikey=s3cret&x", "https://erp.example.com/r?apikey=***&x=***"),
        ("https://erp.example.com/r#frag", "https://erp.example.com/r"),
    ],
)
def test_urls_are_printed_without_credentials(url: str, shown: str) -> None:
    assert mask_url(url) == shown
