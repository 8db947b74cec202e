"""streams.ops.log_format: JSON lines and text, both behind the redactor."""

from __future__ import annotations

import io
import logging
import sys
import uuid
from datetime import datetime
from typing import Any

import orjson
import pytest

from streams.ops.log_format import TEXT_FORMAT, JsonFormatter, install
from streams.ops.redaction import MASK, SECRETS, RedactingFilter, SecretRegistry

SECRET = f"planted-{uuid.uuid4().hex}"


def record(
    message: str = "hello %s",
    args: Any = ("world",),
    *,
    level: int = logging.INFO,
    exc_info: Any = None,
    **extra: Any,
) -> logging.LogRecord:
    made = logging.LogRecord("returnhook", level, __file__, 42, message, args, exc_info)
    for key, value in extra.items():
        setattr(made, key, value)
    return made


def as_json(line: str) -> dict:
    assert "\n" not in line, "one record, one line"
    return orjson.loads(line)


def test_json_line_fields() -> None:
    entry = as_json(JsonFormatter().format(record()))
    assert set(entry) == {"ts", "level", "logger", "message"}
    assert entry["level"] == "info"
    assert entry["logger"] == "returnhook"
    assert entry["message"] == "hello world"
    ts = datetime.fromisoformat(entry["ts"])
    assert ts.utcoffset() is not None and ts.utcoffset().total_seconds() == 0


@pytest.mark.parametrize(
    ("level", "name"),
    [(logging.DEBUG, "debug"), (logging.WARNING, "warning"), (logging.ERROR, "error")],
)
def test_json_levels_are_lower_case(level: int, name: str) -> None:
    assert as_json(JsonFormatter().format(record(level=level)))["level"] == name


def test_json_extra_fields_become_fields() -> None:
    """The outcome line's fields (tenant, order, …) are queryable in a log pipeline."""
    line = JsonFormatter().format(
        record(
            "outcome %s",
            ("tenant=acme",),
            tenant="acme",
            order="o-1",
            step=0,
            status="Success",
            attempts=2,
            http=200,
            duration_ms=15,
            reason=None,
        )
    )
    entry = as_json(line)
    assert entry["message"] == "outcome tenant=acme"
    assert {k: entry[k] for k in ("tenant", "order", "step", "status", "attempts")} == {
        "tenant": "acme",
        "order": "o-1",
        "step": 0,
        "status": "Success",
        "attempts": 2,
    }
    assert entry["http"] == 200 and entry["duration_ms"] == 15 and entry["reason"] is None


def test_json_private_and_standard_attributes_stay_out() -> None:
    entry = as_json(JsonFormatter().format(record(_private="x")))
    assert "_private" not in entry
    for standard in ("args", "msg", "pathname", "lineno", "exc_info", "process", "thread"):
        assert standard not in entry


def test_json_values_it_cannot_encode_are_written_as_text() -> None:
    class Thing:
        def __str__(self) -> str:
            return "a thing"

    entry = as_json(JsonFormatter().format(record(thing=Thing(), items=(1, 2))))
    assert entry["thing"] == "a thing"
    assert entry["items"] == [1, 2]


def test_json_exceptions_are_one_field_on_the_same_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        info = sys.exc_info()
    line = JsonFormatter().format(record("failed", None, level=logging.ERROR, exc_info=info))
    entry = as_json(line)
    assert entry["message"] == "failed"
    assert entry["exc"].startswith("Traceback") and "ValueError: boom" in entry["exc"]


def test_json_multi_line_messages_stay_one_line() -> None:
    """faust logs its assignment tables as one multi-line message."""
    line = JsonFormatter().format(record("table:\n| a | b |\n", None))
    assert as_json(line)["message"] == "table:\n| a | b |\n"


# --- install(): formatter and redactor on every handler ----------------------------------------


@pytest.fixture
def logger() -> logging.Logger:
    """A logger of its own: the tests must not reconfigure the real root logger."""
    return logging.Logger(f"test-{uuid.uuid4().hex[:6]}", logging.DEBUG)


def attach(logger: logging.Logger) -> io.StringIO:
    stream = io.StringIO()
    logger.addHandler(logging.StreamHandler(stream))
    return stream


def test_install_json_puts_the_formatter_and_the_redactor_on_every_handler(
    logger: logging.Logger,
) -> None:
    first, second = attach(logger), attach(logger)
    install(logger, "json")
    SECRETS.add([SECRET])
    logger.info("sent %s", SECRET, extra={"reason": f"echoed {SECRET}"})
    for stream in (first, second):
        entry = as_json(stream.getvalue().strip())
        assert entry["message"] == f"sent {MASK}"
        assert entry["reason"] == f"echoed {MASK}"
        assert SECRET not in stream.getvalue()


def test_install_text_format(logger: logging.Logger) -> None:
    stream = attach(logger)
    install(logger, "text")
    [handler] = logger.handlers
    assert handler.formatter is not None and handler.formatter._fmt == TEXT_FORMAT
    SECRETS.add([SECRET])
    logger.warning("token %s expired", SECRET)
    line = stream.getvalue().strip()
    assert line.endswith(f"[WARNING] token {MASK} expired"), line
    assert line.startswith("[")


def test_install_is_idempotent(logger: logging.Logger) -> None:
    attach(logger)
    install(logger, "text")
    install(logger, "json")
    [handler] = logger.handlers
    assert isinstance(handler.formatter, JsonFormatter)
    assert sum(isinstance(f, RedactingFilter) for f in handler.filters) == 1


def test_install_adds_a_handler_when_there_is_none(logger: logging.Logger) -> None:
    install(logger, "json")
    [handler] = logger.handlers
    assert isinstance(handler, logging.StreamHandler)
    assert isinstance(handler.formatter, JsonFormatter)
    assert any(isinstance(f, RedactingFilter) for f in handler.filters)


def test_secrets_registered_after_install_are_masked(logger: logging.Logger) -> None:
    """Settings arrive while the worker runs: the filter reads the registry on every record."""
    stream = attach(logger)
    install(logger, "json")
    late = f"late-{uuid.uuid4().hex}"
    logger.info("before %s", late)
    SECRETS.add([late])
    logger.info("after %s", late)
    before, after = (as_json(line) for line in stream.getvalue().splitlines())
    assert before["message"] == f"before {late}"  # not known yet: nothing to go by
    assert after["message"] == f"after {MASK}"


def test_json_exception_text_is_masked(logger: logging.Logger) -> None:
    stream = attach(logger)
    install(logger, "json")
    SECRETS.add([SECRET])
    try:
        raise ConnectionError(f"refused with {SECRET}")
    except ConnectionError:
        logger.exception("delivery failed")
    entry = as_json(stream.getvalue().strip())
    assert "ConnectionError" in entry["exc"] and SECRET not in entry["exc"]


def test_a_separate_registry_masks_only_its_own_values() -> None:
    mine = SecretRegistry()
    mine.add(["only-mine-1234"])
    rec = record("x %s %s", ("only-mine-1234", "other-5678"))
    RedactingFilter(mine).filter(rec)
    assert rec.getMessage() == f"x {MASK} other-5678"


def test_skip_unused_record_fields_leaves_the_caller_and_thread_uncollected() -> None:
    from streams.ops.log_format import skip_unused_record_fields

    saved = (logging._srcfile, logging.logThreads, logging.logMultiprocessing)
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger("test-skip-fields")
    logger.addHandler(Keep())
    logger.propagate = False
    try:
        skip_unused_record_fields()
        logger.warning("x")
    finally:
        logging._srcfile, logging.logThreads, logging.logMultiprocessing = saved
    assert (
        records[0].funcName
        != "test_skip_unused_record_fields_leaves_the_caller_and_thread_uncollected"
    )
    assert records[0].threadName is None
    assert records[0].getMessage() == "x"
