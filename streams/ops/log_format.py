"""Log output: text for people, JSON lines for log pipelines; both pass through the redactor."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import orjson

from streams.ops.payload_filter import PayloadFilter
from streams.ops.redaction import RedactingFilter

# LogRecord attributes that are not "extra" fields of the call.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, the call's extra fields, exc."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = record.exc_text
        return orjson.dumps(entry, default=str).decode()


TEXT_FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s"


def install(root: logging.Logger, log_format: str) -> None:
    """Puts our formatter and the redactor on every handler of the root logger."""
    formatter: logging.Formatter = (
        JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    if not root.handlers:
        root.addHandler(logging.StreamHandler())
    for handler in root.handlers:
        handler.setFormatter(formatter)
        if not any(isinstance(f, PayloadFilter) for f in handler.filters):
            handler.addFilter(PayloadFilter())  # before the redactor, which formats the message
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())


def skip_unused_record_fields() -> None:
    """Neither format shows the caller, the thread or the process name: don't collect them.

    The logging HOWTO's own "Optimization" advice; the worker writes a line per outcome, and
    finding the caller walks the stack each time.
    """
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = False
    logging.logMultiprocessing = False
