"""The replay's window: ``--from``/``--to`` as times or ages, and the replay id.

Pure: every function takes ``now``; nothing here reads a clock it was not given, except
``new_replay_id`` without one.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime, timedelta

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_AGE = re.compile(r"(?:\d+(?:\.\d+)?[smhdw])+")
_AGE_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
TIME_FORMS = (
    "ISO 8601 (2026-03-01T10:00:00Z, 2026-03-01 10:00+01:00, 2026-03-01; no offset means UTC) "
    "or an age (45s, 30m, 2h, 1d, 1h30m)"
)


class ReplayTimeError(ValueError):
    """A --from/--to that is not a time, or a window that cannot hold anything."""


def parse_time(text: str, *, now: datetime) -> datetime:
    """An aware UTC datetime from ISO 8601 or an age (``2h`` = two hours before ``now``)."""
    value = text.strip()
    if not value:
        raise ReplayTimeError(f"an empty time; use {TIME_FORMS}")
    lowered = value.lower()
    if lowered == "now":
        return now.astimezone(UTC)
    age = lowered.removesuffix("ago").replace(" ", "")
    if _AGE.fullmatch(age):
        seconds = sum(float(n) * _UNITS[unit] for n, unit in _AGE_PART.findall(age))
        return (now - timedelta(seconds=seconds)).astimezone(UTC)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ReplayTimeError(f"{text!r} is not a time; use {TIME_FORMS}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def resolve_window(
    from_text: str, to_text: str | None, *, now: datetime
) -> tuple[datetime, datetime | None]:
    """``(start, end)`` of ``[--from, --to)``; end None = up to where the topic ends now."""
    start = parse_time(from_text, now=now)
    end = parse_time(to_text, now=now) if to_text is not None else None
    if start > now:
        raise ReplayTimeError(f"--from {format_time(start)} is in the future")
    if end is not None and end <= start:
        raise ReplayTimeError(
            f"--to {format_time(end)} is not after --from {format_time(start)}: the window is empty"
        )
    return start, end


def format_time(moment: datetime) -> str:
    spec = "milliseconds" if moment.microsecond else "seconds"
    return moment.astimezone(UTC).isoformat(timespec=spec).replace("+00:00", "Z")


def to_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def new_replay_id(now: datetime | None = None) -> str:
    """``replay-<UTC timestamp>-<6 hex>``: sortable, and two replays in one second still differ."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"replay-{moment:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
