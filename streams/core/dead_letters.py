"""Dead-letter records: the reason, and the original record whole (value base64)."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping

from models.records import DeadLetterRecord
from streams.core.decoder import Rejected


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


def dead_letter_record(
    rejected: Rejected,
    *,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    headers: Iterable[tuple[str, bytes | str | None]] | Mapping[str, bytes | str | None] | None,
) -> DeadLetterRecord:
    pairs = headers.items() if isinstance(headers, Mapping) else (headers or [])
    return DeadLetterRecord(
        reason=rejected.reason,
        error=rejected.error,
        topic=topic,
        partition=partition,
        offset=offset,
        key=_text_or_base64(key) if key is not None else None,
        value=base64.b64encode(value or b"").decode(),
        headers={name: _text_or_base64(v) for name, v in pairs},
    )
