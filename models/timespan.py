"""Timeouts as Omnium writes them: a .NET TimeSpan (``00:00:30``) or milliseconds.

A number with a unit (``30s``, ``500ms``, ``2m``) is read too: ``timeout: 30`` meaning 30 ms is a
trap, so ``returnhook settings publish`` refuses bare numbers below ``SMALLEST_BARE_MILLISECONDS``
and asks for a unit.
"""

from __future__ import annotations

import re
from datetime import timedelta

_TIMESPAN = re.compile(
    r"^(?:(?P<days>\d+)\.)?(?P<hours>\d{1,2}):(?P<minutes>\d{1,2}):(?P<seconds>\d{1,2}(?:\.\d+)?)$"
)
_WITH_UNIT = re.compile(r"^(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>ms|s|m|h)$", re.IGNORECASE)
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}
#: A bare number is milliseconds; below this it is far more likely meant as seconds.
SMALLEST_BARE_MILLISECONDS = 1000


def parse_timespan(value: object) -> timedelta:
    """Reads a TimeSpan string, an integer of milliseconds, or a timedelta."""
    try:
        return _parse(value)
    except OverflowError:
        # Absurdly large numbers must fail validation like any other bad value, not crash it.
        raise ValueError(f"{value!r} is out of range for a timeout") from None


def _parse(value: object) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("a timeout is a TimeSpan like '00:00:30' or milliseconds, not a boolean")
    if isinstance(value, int | float):
        return timedelta(milliseconds=value)
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return timedelta(milliseconds=int(text))
        unit = _WITH_UNIT.match(text)
        if unit:
            factor = _UNIT_MS[unit["unit"].lower()]
            return timedelta(milliseconds=float(unit["number"]) * factor)
        match = _TIMESPAN.match(text)
        if match:
            parts = match.groupdict()
            return timedelta(
                days=int(parts["days"] or 0),
                hours=int(parts["hours"]),
                minutes=int(parts["minutes"]),
                seconds=float(parts["seconds"]),
            )
    raise ValueError(
        f"{value!r} is not a TimeSpan ('hh:mm:ss', 'd.hh:mm:ss'), "
        "milliseconds or a number with a unit ('30s', '500ms', '2m')"
    )


def format_timespan(value: timedelta) -> str:
    """Writes a TimeSpan string, the form the settings are documented in."""
    # Rounded to whole milliseconds first, so 59.9996 s carries into 00:01:00, never "00:00:59.".
    millis = round(value.total_seconds() * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, fraction = divmod(rest, 1000)
    whole = f"{hours:02d}:{minutes:02d}:{seconds:02d}"
    return whole if not fraction else f"{whole}.{fraction:03d}".rstrip("0")
