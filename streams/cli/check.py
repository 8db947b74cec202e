"""``returnhook check``: what an operator runs first on a new cluster (see cluster_check)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from streams.cli.connection_options import connection_options
from streams.cli.kafka_access import ConfigOpt, config_from, fail
from streams.kafka.cluster_check import check_cluster
from streams.kafka.connection import ConnectionConfigError
from streams.kafka.topics import TopicsFileError, load_topics
from streams.ops.console import console


@connection_options
def check(
    connection_flags: dict[str, object],
    broker: Annotated[
        str | None,
        typer.Option("--broker", envvar="RETURNHOOK_BROKER", help="Kafka bootstrap host:port[,…]"),
    ] = None,
    topics_file: Annotated[
        Path | None,
        typer.Option("--topics-file", envvar="RETURNHOOK_TOPICS_FILE", help="topics.yaml to use"),
    ] = None,
    app_id: Annotated[str | None, typer.Option(help="consumer group / faust app id")] = None,
    config_file: ConfigOpt = None,
    timeout: Annotated[float, typer.Option(help="seconds per step before giving up")] = 10.0,
) -> None:
    """Check the cluster with the effective configuration: brokers, security, topics, settings,
    the consumer group. Exit 0 only if all is well."""
    flags = {"broker": broker, "topics_file": topics_file, "app_id": app_id, **connection_flags}
    config = config_from(flags, config_file)
    if not config.broker:
        raise fail("check needs a running Kafka: give --broker or RETURNHOOK_BROKER")
    try:
        catalog = load_topics(config.topics_file)
    except TopicsFileError as exc:
        raise fail(str(exc)) from None
    try:
        rows = asyncio.run(
            check_cluster(config.connection_only(), catalog, config.app_id, timeout=timeout)
        )
    except ConnectionConfigError as exc:
        raise fail(str(exc)) from None
    table = Table("check", "result", "detail", title=f"returnhook check: {config.broker}")
    for row in rows:
        table.add_row(row.item, "ok" if row.ok else "[red]FAIL[/]", row.detail)
    console().print(table)
    if not all(row.ok for row in rows):
        raise typer.Exit(code=1)
