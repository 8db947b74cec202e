"""Record payloads never reach the logs, whatever the level.

Library debug logs (aiokafka's connection and producer, faust's streams) pass whole records,
protocol requests and raw bytes as log arguments: order data, personal data. This filter
replaces such arguments with their type and size before the message is formatted, so even
``--log-libraries`` at debug shows that a record went by, never what was in it.
"""

from __future__ import annotations

import logging
from typing import Any

#: Modules whose objects carry record contents (requests, batches, consumer records, events).
_PAYLOAD_MODULES = (
    "aiokafka.protocol",
    "aiokafka.record",
    "aiokafka.structs",
    "aiokafka.producer.message_accumulator",
    "faust.types.tuples",
    "faust.events",
)

#: Loggers of returnhook itself: debug logging is scoped to these unless libraries are asked for.
OWN_LOGGERS = ("returnhook", "streams", "models")


def payload_free(value: Any) -> Any:
    """The argument itself, or a stand-in naming what was left out."""
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(value)} bytes>"
    module = type(value).__module__ or ""
    if module.startswith(_PAYLOAD_MODULES):
        return f"<{type(value).__name__}>"
    if isinstance(value, list | tuple) and any(
        payload_free(item) is not item for item in value[:1000]
    ):
        return f"<{type(value).__name__} of {len(value)}>"
    if isinstance(value, dict) and any(payload_free(v) is not v for v in list(value.values())):
        return f"<{type(value).__name__} of {len(value)}>"
    return value


class PayloadFilter(logging.Filter):
    """Put on every handler ahead of the redactor (which formats the message)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(payload_free(arg) for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {key: payload_free(arg) for key, arg in record.args.items()}
        return True


def scope_levels(level: str, libraries: bool) -> tuple[str, dict[str, str]]:
    """(root level, per-logger levels): debug is for our loggers unless libraries are asked for.

    Library loggers otherwise stay at INFO: at DEBUG aiokafka logs every request on the wire.
    """
    level = level.upper()
    if level != "DEBUG" or libraries:
        return level, {}
    return "INFO", dict.fromkeys(OWN_LOGGERS, "DEBUG")
