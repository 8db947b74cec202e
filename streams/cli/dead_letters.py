"""``returnhook dead-letters list|redrive``: the commands around ``streams.replay.dead_letters``."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from streams.cli.connection_options import connection_options
from streams.cli.kafka_access import BrokerOpt, ConfigOpt, TopicsOpt, config_from, fail, reach
from streams.core.redrive import DeadLetterFilter
from streams.kafka.connection import KafkaConnection
from streams.kafka.topics import TopicCatalog, TopicsFileError, load_topics
from streams.ops.console import console
from streams.replay.dead_letters import (
    DeadLetterEntry,
    DeadLetterError,
    list_dead_letters,
    redrive,
)
from streams.replay.window import TIME_FORMS, ReplayTimeError, parse_time, to_ms

dead_letters_app = typer.Typer(
    help="Dead letters: list them, and put them back on the input topic once fixed.",
    no_args_is_help=True,
)

Reasons = Annotated[
    list[str] | None,
    typer.Option("--reason", help="only this reason, e.g. unknown_tenant (repeatable)"),
]
Tenants = Annotated[
    list[str] | None, typer.Option("--tenant", help="only this tenant (repeatable)")
]
From = Annotated[
    str | None, typer.Option("--from", help=f"dead-lettered at or after: {TIME_FORMS}")
]
To = Annotated[str | None, typer.Option("--to", help="dead-lettered before this time")]
Refs = Annotated[
    list[str] | None,
    typer.Option("--dead-letter", help="only this one: TOPIC/PARTITION/OFFSET (repeatable)"),
]
Timeout = Annotated[float, typer.Option(help="seconds to wait for the broker")]


def _setup(
    flags: dict[str, object],
    config_file: Path | None,
    broker: str | None,
    topics_file: Path | None,
    reasons: list[str] | None,
    tenants: list[str] | None,
    from_: str | None,
    to: str | None,
    refs: list[str] | None,
) -> tuple[KafkaConnection, TopicCatalog, DeadLetterFilter]:
    config = config_from({**flags, "broker": broker}, config_file)
    if not config.broker:
        raise fail("dead letters are read from a running Kafka: give --broker or RETURNHOOK_BROKER")
    connection = config.connection_only()
    reach(connection)
    try:
        catalog = load_topics(topics_file)
    except TopicsFileError as exc:
        raise fail(str(exc).replace("\n", " ")) from None
    now = datetime.now(UTC)
    try:
        start = to_ms(parse_time(from_, now=now)) if from_ else None
        end = to_ms(parse_time(to, now=now)) if to else None
    except ReplayTimeError as exc:
        raise fail(str(exc)) from None
    wanted = DeadLetterFilter(
        reasons=frozenset(reasons or ()),
        tenants=frozenset(tenants or ()),
        start_ms=start,
        end_ms=end,
        refs=frozenset(refs or ()),
    )
    return connection, catalog, wanted


def _load(
    broker: KafkaConnection, catalog: TopicCatalog, wanted: DeadLetterFilter, timeout: float
) -> list[DeadLetterEntry]:
    try:
        entries, unreadable = asyncio.run(
            list_dead_letters(broker, catalog, wanted, timeout=timeout)
        )
    except DeadLetterError as exc:
        raise fail(str(exc)) from None
    if unreadable:
        console(stderr=True).print(
            f"note: {unreadable} record(s) on {catalog.dead_letters.name} are not dead letters",
            markup=False,
        )
    return entries


@dead_letters_app.command("list")
@connection_options
def list_command(
    connection_flags: dict[str, object],
    broker: BrokerOpt = None,
    config_file: ConfigOpt = None,
    topics_file: TopicsOpt = None,
    reason: Reasons = None,
    tenant: Tenants = None,
    from_: From = None,
    to: To = None,
    dead_letter: Refs = None,
    connect_timeout: Timeout = 10.0,
) -> None:
    """A table of dead letters: when, reason, tenant, where the input was, whether redriven."""
    bootstrap, catalog, wanted = _setup(
        connection_flags, config_file, broker, topics_file, reason, tenant, from_, to, dead_letter
    )
    entries = _load(bootstrap, catalog, wanted, connect_timeout)
    out = console()
    table = Table(
        "when (UTC)", "reason", "tenant", "source", "dead letter", "redrive of", "redriven", "error"
    )
    for entry in entries:
        dead = entry.record
        redriven = "-"
        if entry.redriven is not None:
            marker = entry.redriven
            at = f"p{marker.get('partition')}@{marker.get('offset')}"
            redriven = f"{marker.get('redrivenAt', '?')} → {at}"
        table.add_row(
            entry.when,
            dead.reason,
            entry.tenant or "?",
            f"{dead.topic}[{dead.partition}]@{dead.offset}",
            entry.ref,
            entry.came_from or "-",
            redriven,
            escape(_short(dead.error)),
        )
    out.print(table)
    out.print(f"{len(entries)} dead letter(s)", markup=False)


@dead_letters_app.command("redrive")
@connection_options
def redrive_command(
    connection_flags: dict[str, object],
    broker: BrokerOpt = None,
    config_file: ConfigOpt = None,
    topics_file: TopicsOpt = None,
    reason: Reasons = None,
    tenant: Tenants = None,
    from_: From = None,
    to: To = None,
    dead_letter: Refs = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="list what would be redriven; produce nothing")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="redrive again what was redriven before")
    ] = False,
    connect_timeout: Timeout = 10.0,
) -> None:
    """Put the original key, value and headers of each matching dead letter back on the input.

    Each gets the header returnhook-redriven-from: TOPIC/PARTITION/OFFSET of its dead letter.
    A dead letter is redriven once: a second time is refused (exit 1) unless --force.
    """
    bootstrap, catalog, wanted = _setup(
        connection_flags, config_file, broker, topics_file, reason, tenant, from_, to, dead_letter
    )
    entries = _load(bootstrap, catalog, wanted, connect_timeout)
    try:
        result = asyncio.run(redrive(bootstrap, catalog, entries, force=force, dry_run=dry_run))
    except Exception as exc:
        raise fail(f"redrive to {catalog.input.name} failed: {exc}") from None
    out = console()
    verb = "would redrive" if dry_run else "redriven"
    for entry, partition, offset in result.redriven:
        where = "" if dry_run else f" → {catalog.input.name}[{partition}]@{offset}"
        out.print(
            f"{verb} {entry.ref} ({entry.record.reason}, tenant {entry.tenant or '?'}){where}",
            markup=False,
            soft_wrap=True,
        )
    for entry in result.refused:
        marker = entry.redriven or {}
        out.print(
            f"refused {entry.ref}: already redriven at {marker.get('redrivenAt', '?')} "
            f"(to {marker.get('inputTopic', '?')}[{marker.get('partition')}]@"
            f"{marker.get('offset')}); --force redrives it again",
            markup=False,
            soft_wrap=True,
        )
    summary = f"{len(result.redriven)} {verb}, {len(result.refused)} refused"
    if not entries:
        summary = "no dead letter matches"
    out.print(summary + (" (dry run: nothing was produced)" if dry_run else ""), markup=False)
    if result.refused:
        raise typer.Exit(code=1)


def _short(text: str, limit: int = 60) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
