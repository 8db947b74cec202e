"""``returnhook send``: events onto the input topic, from a file or a few flags.

The console producer for trying a tenant's endpoint: each event is checked the way a worker
will read it, so a mistake is reported here instead of as a dead letter later.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
import yaml
from rich.markup import escape

from streams.cli.connection_options import connection_options
from streams.cli.kafka_access import BrokerOpt, ConfigOpt, TopicsOpt, config_from, fail, reach
from streams.core.decoder import Accepted, Ignored, decode
from streams.kafka.no_auto_create import forbid_topic_auto_creation
from streams.kafka.record_io import produce_records
from streams.kafka.topic_admin import KafkaUnreachableError, TopicsNotReadyError, verify_topics
from streams.kafka.topics import TopicsFileError, load_topics
from streams.ops.console import console

out = console()
err = console(stderr=True)


def event_from_flags(
    tenant: str,
    order: str,
    *,
    status: str = "Returned",
    market: str | None = None,
    return_id: str | None = None,
    now: datetime | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """A minimal order-status-changed event: enough for the step to run."""
    return_id = return_id or f"{order}-r1"
    body: dict[str, Any] = {
        "id": order,
        "status": status,
        "returnOrderForms": [{"returnId": return_id}],
    }
    if market:
        body["marketId"] = market
    return {
        "eventId": event_id or f"send-{uuid.uuid4().hex[:12]}",
        "tenantId": tenant,
        "orderId": order,
        "status": status,
        "returnOrderFormId": return_id,
        "timestamp": (now or datetime.now(UTC)).isoformat().replace("+00:00", "Z"),
        "order": body,
    }


def events_from_file(path: Path) -> list[Any]:
    """One event, a list of them (JSON or YAML)."""
    try:
        text = path.read_text(encoding="utf-8")
        data = orjson.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (OSError, orjson.JSONDecodeError, yaml.YAMLError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from None
    return data if isinstance(data, list) else [data]


def to_records(
    events: list[Any], *, allow_invalid: bool
) -> tuple[list[tuple[bytes, bytes]], list[str]]:
    """Key (the order id) and value per event, and what is wrong with any of them."""
    records: list[tuple[bytes, bytes]] = []
    problems: list[str] = []
    for index, event in enumerate(events):
        value = orjson.dumps(event)
        decoded = decode(value)
        where = f"event {index}" if len(events) > 1 else "the event"
        if isinstance(decoded, Accepted):
            records.append((decoded.order_id.encode(), value))
            continue
        if isinstance(decoded, Ignored):
            problem = f"{where} has status {decoded.status!r}: workers ignore it"
        else:
            problem = f"{where} would be dead-lettered as {decoded.reason}: {decoded.error}"
        problems.append(problem)
        if allow_invalid:
            key = event.get("orderId") if isinstance(event, dict) else None
            records.append((str(key or "").encode(), value))
    return records, problems


@connection_options
def send(
    connection_flags: dict[str, object],
    file: Annotated[
        Path | None, typer.Argument(help="JSON or YAML: one event or a list", show_default=False)
    ] = None,
    tenant: Annotated[str | None, typer.Option(help="without FILE: the event's tenantId")] = None,
    order: Annotated[str | None, typer.Option(help="without FILE: the order id")] = None,
    status: Annotated[str, typer.Option(help="without FILE: the new status")] = "Returned",
    market: Annotated[str | None, typer.Option(help="without FILE: order.marketId")] = None,
    allow_invalid: Annotated[
        bool, typer.Option(help="send events a worker would ignore or dead-letter, too")
    ] = False,
    broker: BrokerOpt = None,
    topics_file: TopicsOpt = None,
    config_file: ConfigOpt = None,
) -> None:
    """Send return events onto the input topic (keyed by order id), checked as workers read them."""
    if file is None and not (tenant and order):
        raise fail("give an event FILE, or --tenant and --order")
    try:
        events = (
            events_from_file(file)
            if file
            else [event_from_flags(tenant or "", order or "", status=status, market=market)]
        )
        catalog = load_topics(topics_file)
    except (ValueError, TopicsFileError) as exc:
        raise fail(str(exc)) from None
    records, problems = to_records(events, allow_invalid=allow_invalid)
    label = "[yellow]warning:[/]" if allow_invalid else "[red]error:[/]"
    for problem in problems:
        err.print(f"{label} {escape(problem)}", highlight=False)
    if problems and not allow_invalid:
        err.print("Nothing was sent (--allow-invalid sends them anyway).")
        raise typer.Exit(code=1)
    config = config_from({**connection_flags, "broker": broker}, config_file)
    if not config.broker:
        raise fail("events are sent to a running Kafka: give --broker or RETURNHOOK_BROKER")
    reach(config)
    connection = config.connection_only()
    broker = connection.bootstrap
    topic = catalog.input.name
    try:
        asyncio.run(verify_topics(connection, catalog, ["input"]))
        forbid_topic_auto_creation()
        sent = asyncio.run(produce_records(connection, topic, records))
    except (TopicsNotReadyError, KafkaUnreachableError) as exc:
        raise fail(str(exc)) from None
    except Exception as exc:
        raise fail(f"sending to {topic} on {broker} failed: {exc}") from None
    for (key, _), meta in zip(records, sent, strict=True):
        out.print(
            f"sent order {key.decode()} to {topic} partition {meta.partition} offset {meta.offset}",
            highlight=False,
        )
