"""The demo's console: a line per stage (``what… ok (detail)``), the receiver's lines held
until the stage's own line is done, and quiet Kafka clients (the demo reports failures itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator

from rich.markup import escape

from streams.demo.report import console

_held_lines: list[str] | None = None


@contextlib.contextmanager
def stage(what: str) -> Iterator[Callable[[str], None]]:
    """Prints ``what… ok (detail)``, or ``what… failed`` and re-raises.

    Lines that other code prints meanwhile (the receiver's) wait until the stage's line is done.
    """
    with holding_output():
        console.print(f"{what}… ", end="")
        details: list[str] = []
        try:
            yield details.append
        except (asyncio.CancelledError, KeyboardInterrupt):
            console.print("[yellow]interrupted[/]")
            raise
        except BaseException:
            console.print("[red]failed[/]")
            raise
        suffix = f" ({escape(details[-1])})" if details else ""
        console.print(f"[green]ok[/]{suffix}")


@contextlib.contextmanager
def holding_output() -> Iterator[None]:
    """Lines given to ``say`` meanwhile are printed when the outermost holder ends."""
    global _held_lines
    if _held_lines is not None:
        yield
        return
    _held_lines = []
    try:
        yield
    finally:
        held, _held_lines = _held_lines, None
        for line in held:
            console.print(line)


def say(line: str) -> None:
    """Prints a line now, or after the current stage's own line."""
    if _held_lines is not None:
        _held_lines.append(line)
    else:
        console.print(line)


@contextlib.contextmanager
def quiet_kafka_clients() -> Iterator[None]:
    """aiokafka logs every reconnect attempt at ERROR; the demo reports failures itself."""
    logger = logging.getLogger("aiokafka")
    previous = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(previous)


class _ConsoleHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage().replace(" -> ", " → ")
        say(f"  [dim]webhook receiver:[/] {escape(message)}")


@contextlib.contextmanager
def receiver_log_lines() -> Iterator[None]:
    """Shows each request the demo receiver answers (it logs one safe line per request)."""
    logger = logging.getLogger("streams.demo.receiver")
    handler = _ConsoleHandler(logging.INFO)
    previous = (logger.level, logger.propagate)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous[0])
        logger.propagate = previous[1]
