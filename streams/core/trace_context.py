"""W3C trace context carried from an input record to its webhook calls and output records.

Only ``traceparent`` and ``tracestate`` are carried, and only when ``traceparent`` is well formed
(https://www.w3.org/TR/trace-context/): a malformed one would break the receiver's tracing, and
a ``tracestate`` without a valid parent means nothing. Pure: the shells pass in whatever header
shape their client has (a mapping, or (name, value) pairs with bytes or str values).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
TRACE_HEADERS = (TRACEPARENT, TRACESTATE)

# version-traceid-parentid-flags, lower-case hex; a future version may append fields after "-".
_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")
_MAX_TRACESTATE = 512  # what W3C asks every vendor to accept; longer ones may be cut anyway
_PRINTABLE = re.compile(r"^[\x20-\x7e]*$")

HeaderPairs = Mapping[str, bytes | str | None] | Iterable[tuple[str, bytes | str | None]]


def valid_traceparent(value: str) -> bool:
    match = _TRACEPARENT.match(value)
    if match is None:
        return False
    version, trace_id, parent_id, _, rest = match.groups()
    if version == "ff" or (version == "00" and rest is not None):
        return False
    return trace_id != "0" * 32 and parent_id != "0" * 16


def trace_context(headers: HeaderPairs | None) -> dict[str, str]:
    """``{"traceparent": ..., "tracestate": ...}`` from a record's headers; {} if none or invalid.

    Header names match case-insensitively; the first occurrence wins (Kafka allows repeats).
    """
    found: dict[str, str] = {}
    pairs = headers.items() if isinstance(headers, Mapping) else (headers or ())
    for name, raw in pairs:
        key = name.lower() if isinstance(name, str) else ""
        if key not in TRACE_HEADERS or key in found or raw is None:
            continue
        try:
            text = raw.decode("ascii") if isinstance(raw, bytes) else str(raw)
        except UnicodeDecodeError:
            continue
        found[key] = text.strip()
    parent = found.get(TRACEPARENT)
    if parent is None or not valid_traceparent(parent):
        return {}
    carried = {TRACEPARENT: parent}
    state = found.get(TRACESTATE)
    if state and len(state) <= _MAX_TRACESTATE and _PRINTABLE.match(state):
        carried[TRACESTATE] = state
    return carried


def kafka_headers(trace: Mapping[str, str]) -> list[tuple[str, bytes]]:
    """The trace context as Kafka record headers."""
    return [(name, value.encode("ascii")) for name, value in trace.items()]
