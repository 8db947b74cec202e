"""What every Kafka command does first: the effective configuration, then a reachable broker.

Failures end the command with one line on stderr and exit 1; a traceback only with
``returnhook --verbose``.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.markup import escape

from streams.core.response import describe
from streams.kafka.connection import ConnectionConfigError, KafkaConnection
from streams.kafka.probe import KafkaUnavailable, ensure_reachable
from streams.ops.config import ConfigFileError, WorkerConfig, load_config
from streams.ops.console import console

err = console(stderr=True)
_state = {"verbose": False}

BrokerOpt = Annotated[
    str | None,
    typer.Option("--broker", envvar="RETURNHOOK_BROKER", help="Kafka bootstrap host:port[,…]"),
]
TopicsOpt = Annotated[
    Path | None,
    typer.Option("--topics-file", envvar="RETURNHOOK_TOPICS_FILE", help="topics.yaml to use"),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config", help="YAML worker config (below flags and RETURNHOOK_* in precedence)"
    ),
]

# Loggers of the Kafka clients: they log each failed connection attempt, which the one-line
# error already explains.
_CLIENT_LOGGERS = ("aiokafka", "asyncio")


def set_verbose(verbose: bool, *, quiet_clients: bool = True) -> None:
    _state["verbose"] = verbose
    if verbose:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
        return
    if not quiet_clients:
        return
    for name in _CLIENT_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)


def verbose() -> bool:
    return _state["verbose"]


def fail(message: str) -> typer.Exit:
    """One line on stderr; the caller raises what this returns (exit code 1)."""
    if verbose() and sys.exc_info()[0] is not None:
        err.print_exception()
    err.print(f"[red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code=1)


def config_from(flags: dict[str, object], config_file: Path | None) -> WorkerConfig:
    try:
        return load_config({k: v for k, v in flags.items() if v is not None}, config_file)
    except ValidationError as exc:
        raise fail(f"invalid worker configuration: {describe(exc)}") from None
    except ConfigFileError as exc:
        raise fail(str(exc)) from None


def reach(connection: KafkaConnection, timeout: float = 10.0) -> None:
    """Ends the command with the cause when no bootstrap server takes our connection."""
    try:
        asyncio.run(ensure_reachable(connection.connection_only(), timeout))
    except (KafkaUnavailable, ConnectionConfigError) as exc:
        raise fail(str(exc)) from None
