"""What the work of one input record needs of it, taken from faust's message at intake.

faust keeps each message until it is acknowledged; the worker clears the message's value once
this is taken, so a finished event waiting for its turn to be acknowledged holds no bytes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from streams.core.record_size import record_size


@dataclass(frozen=True, slots=True)
class InputRecord:
    tp: Any
    """faust's TopicPartition of the record (the ledger's and the progress book's key)."""
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]
    timestamp: float | None
    """The record's Kafka timestamp, in seconds."""
    received_at: float
    """When this worker took it (epoch seconds)."""

    @classmethod
    def of(cls, message: Any) -> InputRecord:
        headers = message.headers or []
        pairs = list(headers.items()) if isinstance(headers, dict) else list(headers)
        return cls(
            tp=message.tp,
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            key=message.key,
            value=message.value,
            headers=pairs,
            timestamp=message.timestamp,
            received_at=time.time(),
        )

    @property
    def size(self) -> int:
        """The record's bytes, as the window's byte bound counts them."""
        return record_size(self.key, self.value, self.headers)
