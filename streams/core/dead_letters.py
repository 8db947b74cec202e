"""Dead-letter records: the reason, the envelope, and as much of the original value as fits.

A dead letter that is larger than the dead-letter topic takes cannot be written, and one that
cannot be written stops its partition; so the record is fitted to a byte budget here. The
envelope (reason, source topic/partition/offset, key, headers, the value's size and SHA-256)
is always kept; the value is cut first, and only a hostile envelope (a huge key or headers)
is cut too. Every cut field is named in ``truncated``.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping

import orjson

from models.records import DeadLetterRecord
from streams.core.decoder import Rejected
from streams.core.record_size import encode_record

#: Characters kept of the error text and of the key when the envelope itself does not fit.
ENVELOPE_TEXT_CAP = 1024
#: The smallest budget a dead letter can be fitted to (a cut envelope is a few KiB at most).
MIN_DEAD_LETTER_BYTES = 32 * 1024

Headers = Iterable[tuple[str, bytes | str | None]] | Mapping[str, bytes | str | None] | None


def _text_or_base64(value: bytes | str | None) -> str:
    """Header values as text when they are UTF-8, else ``base64:…`` so no byte is lost."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(value).decode()


def encode_dead_letter(record: DeadLetterRecord) -> bytes:
    """The record's value on the topic: exactly what is measured here and what is sent."""
    return encode_record(record)


def dead_letter_record(
    rejected: Rejected,
    *,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    headers: Headers,
    max_bytes: int | None = None,
) -> DeadLetterRecord:
    """The dead letter for one input record; its encoding fits ``max_bytes`` when given."""
    pairs = headers.items() if isinstance(headers, Mapping) else (headers or [])
    raw = value or b""
    record = DeadLetterRecord(
        reason=rejected.reason,
        error=rejected.error,
        topic=topic,
        partition=partition,
        offset=offset,
        key=_text_or_base64(key) if key is not None else None,
        value=base64.b64encode(raw).decode(),
        headers={name: _text_or_base64(v) for name, v in pairs},
        value_size=len(raw),
        value_sha256=hashlib.sha256(raw).hexdigest(),
    )
    if max_bytes is None or len(encode_dead_letter(record)) <= max_bytes:
        return record
    return fit_dead_letter(record, raw, max_bytes)


def fit_dead_letter(record: DeadLetterRecord, raw: bytes, max_bytes: int) -> DeadLetterRecord:
    """Cuts the value (and, if the envelope alone is too large, the envelope) to ``max_bytes``."""
    if max_bytes < MIN_DEAD_LETTER_BYTES:
        raise ValueError(f"a dead letter needs at least {MIN_DEAD_LETTER_BYTES} bytes")
    # Measured with the mark the cut value will carry, so that adding it cannot overflow.
    envelope = record.model_copy(update={"value": "", "truncated": ["value"]})
    if len(encode_dead_letter(envelope)) > max_bytes // 2:
        envelope = _cut_envelope(envelope, max_bytes // 4)
    room = max_bytes - len(encode_dead_letter(envelope))
    keep = max(room, 0) // 4 * 3  # base64 is ASCII: 4 characters per 3 bytes, no escaping
    cut = [f for f in envelope.truncated if f != "value" or keep < len(raw)]
    value = base64.b64encode(raw[:keep]).decode()
    return envelope.model_copy(update={"value": value, "truncated": cut})


def _cut_envelope(record: DeadLetterRecord, headers_budget: int) -> DeadLetterRecord:
    """The error and key to their first characters, and headers to what fits the budget."""
    cut = list(record.truncated)
    error, key = record.error, record.key
    if len(error) > ENVELOPE_TEXT_CAP:
        error = error[:ENVELOPE_TEXT_CAP]
        cut.append("error")
    if key is not None and len(key) > ENVELOPE_TEXT_CAP:
        key = key[:ENVELOPE_TEXT_CAP]
        cut.append("key")
    headers: dict[str, str] = {}
    used = 0
    for name, text in record.headers.items():
        name, short = name[:ENVELOPE_TEXT_CAP], text[:ENVELOPE_TEXT_CAP]
        size = len(orjson.dumps(name)) + len(orjson.dumps(short)) + 2
        if used + size > headers_budget:
            break
        headers[name] = short
        used += size
    if headers != record.headers:
        cut.append("headers")
    return record.model_copy(
        update={"error": error, "key": key, "headers": headers, "truncated": cut}
    )
