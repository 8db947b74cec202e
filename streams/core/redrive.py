"""Putting a dead letter back on the input topic (``returnhook dead-letters redrive``). Pure.

A dead letter holds the original record whole (key, value base64, headers). A redrive produces
exactly that record again, with one header more: ``returnhook-redriven-from`` names the dead
letter (``topic/partition/offset``). When the redriven record fails again, the worker copies the
input's headers into the new dead letter, so the link travels with it.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass

import orjson

from models.records import DeadLetterRecord

REDRIVE_HEADER = "returnhook-redriven-from"
_BASE64 = "base64:"


def dead_letter_ref(topic: str, partition: int, offset: int) -> str:
    """How a dead letter is named: in the redrive header, on the redrives topic, in tables."""
    return f"{topic}/{partition}/{offset}"


def _bytes(text: str) -> bytes:
    """A key or header value as the dead letter stored it: text, or ``base64:…`` when binary."""
    if text.startswith(_BASE64):
        try:
            return base64.b64decode(text[len(_BASE64) :], validate=True)
        except (binascii.Error, ValueError):
            pass  # a text value that happens to start with "base64:"
    return text.encode("utf-8")


@dataclass(frozen=True)
class OriginalRecord:
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]


def original_record(dead: DeadLetterRecord, ref: str) -> OriginalRecord:
    """The input record as it was, plus the redrive header naming dead letter ``ref``.

    An earlier redrive header is replaced: the chain is followed through the dead letters.
    """
    headers = [(k, _bytes(v)) for k, v in dead.headers.items() if k != REDRIVE_HEADER]
    headers.append((REDRIVE_HEADER, ref.encode()))
    return OriginalRecord(
        key=_bytes(dead.key) if dead.key is not None else None,
        value=base64.b64decode(dead.value),
        headers=headers,
    )


def tenant_of(dead: DeadLetterRecord) -> str | None:
    """The ``tenantId`` of the original value when it is a JSON object that has one."""
    try:
        document = orjson.loads(base64.b64decode(dead.value))
    except (orjson.JSONDecodeError, binascii.Error, ValueError):
        return None
    if not isinstance(document, dict):
        return None
    for name, value in document.items():
        if name.lower() == "tenantid" and isinstance(value, str):
            return value
    return None


@dataclass(frozen=True)
class DeadLetterFilter:
    """Which dead letters a command acts on; empty sets match everything."""

    reasons: frozenset[str] = frozenset()
    tenants: frozenset[str] = frozenset()
    start_ms: int | None = None
    end_ms: int | None = None
    refs: frozenset[str] = frozenset()

    def matches(self, dead: DeadLetterRecord, tenant: str | None, ref: str, ts_ms: int) -> bool:
        if self.reasons and dead.reason not in self.reasons:
            return False
        if self.tenants and tenant not in self.tenants:
            return False
        if self.refs and ref not in self.refs:
            return False
        if self.start_ms is not None and ts_ms < self.start_ms:
            return False
        return self.end_ms is None or ts_ms < self.end_ms


def redriven_from(headers: dict[str, str]) -> str | None:
    """The dead letter this one's input was redriven from, if it was."""
    return headers.get(REDRIVE_HEADER)


def redrive_marker(ref: str, input_topic: str, partition: int, offset: int, at: str) -> bytes:
    """The value on the compacted redrives topic (key: ``ref``)."""
    return orjson.dumps(
        {
            "deadLetter": ref,
            "inputTopic": input_topic,
            "partition": partition,
            "offset": offset,
            "redrivenAt": at,
        }
    )


def refs_redriven(markers: Iterable[tuple[bytes | None, bytes | None]]) -> dict[str, dict]:
    """The redrives topic read whole: last value per key wins; a tombstone forgets one."""
    found: dict[str, dict] = {}
    for key, value in markers:
        if key is None:
            continue
        ref = key.decode("utf-8", "replace")
        if value is None:
            found.pop(ref, None)
            continue
        try:
            document = orjson.loads(value)
        except orjson.JSONDecodeError:
            document = {}
        found[ref] = document if isinstance(document, dict) else {}
    return found
