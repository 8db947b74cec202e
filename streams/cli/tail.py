"""``returnhook tail``: order-patches, order-events and dead letters as they arrive.

The console consumer for our output topics, one readable line (or one JSON object) per record,
with filters by tenant and order. It joins no consumer group and commits nothing.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from typing import Annotated, Any, Literal

import orjson
import typer

from models.casing import get_ci
from streams.cli.connection_options import connection_options
from streams.cli.kafka_access import BrokerOpt, ConfigOpt, TopicsOpt, config_from, fail, reach
from streams.kafka.record_io import follow_topics
from streams.kafka.topic_admin import KafkaUnreachableError, TopicsNotReadyError, verify_topics
from streams.kafka.topics import TopicsFileError, load_topics
from streams.ops.console import console

out = console()
err = console(stderr=True)

Role = Literal["patches", "events", "deadLetters"]
ROLES: tuple[Role, ...] = ("patches", "events", "deadLetters")
_LABEL = {"patches": "patch", "events": "event", "deadLetters": "dead letter"}


def record_fields(role: Role, key: bytes | None, value: bytes | None) -> dict[str, Any]:
    """The record as JSON, plus tenant and order for the filters (dead letters: from the input)."""
    try:
        data = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return {"tenant": None, "order": key.decode("utf-8", "replace") if key else None}
    if not isinstance(data, dict):
        data = {"value": data}
    tenant, order = data.get("tenantId"), data.get("orderId")
    if role == "deadLetters":
        order = key.decode("utf-8", "replace") if key else None
        try:
            original = orjson.loads(base64.b64decode(data.get("value") or ""))
            tenant = get_ci(original, "tenantId") if isinstance(original, dict) else None
        except (binascii.Error, ValueError, orjson.JSONDecodeError):
            tenant = None
    return {**data, "tenant": tenant, "order": order}


def matches(fields: dict[str, Any], tenants: list[str], orders: list[str]) -> bool:
    return (not tenants or fields.get("tenant") in tenants) and (
        not orders or fields.get("order") in orders
    )


def describe_record(role: Role, fields: dict[str, Any]) -> str:
    """One line a person reads: what happened to which order."""
    head = f"{_LABEL[role]:<11} {fields.get('tenant') or '-'} {fields.get('order') or '-'}"
    step = fields.get("step") if isinstance(fields.get("step"), dict) else {}
    where = f" step {step.get('index')} {step.get('name')}" if step else ""
    if role == "events":
        parts = [
            f"{head}{where}: {fields.get('actionStatus')}",
            f"attempts={fields.get('attempts')}",
            f"http={fields.get('httpStatus')}",
            f"{fields.get('durationMs')} ms",
        ]
        if fields.get("errorReason"):
            parts.append(f"reason: {fields['errorReason']}")
        if not fields.get("continueWorkflow", True):
            parts.append(f"workflow stopped, skipped steps {fields.get('skippedSteps')}")
        return "  ".join(parts)
    if role == "patches":
        patch = orjson.dumps(fields.get("patch"), option=orjson.OPT_SORT_KEYS).decode()
        ignored = fields.get("ignoredFields")
        return f"{head}{where}: {patch}" + (f"  ignored: {ignored}" if ignored else "")
    origin = f"{fields.get('topic')}[{fields.get('partition')}]@{fields.get('offset')}"
    return f"{head}: {fields.get('reason')} at {origin}: {fields.get('error')}"


@connection_options
def tail(
    connection_flags: dict[str, object],
    from_beginning: Annotated[
        bool, typer.Option("--from-beginning", help="every record so far, then new ones")
    ] = False,
    tenant: Annotated[list[str] | None, typer.Option(help="only this tenant (repeatable)")] = None,
    order: Annotated[list[str] | None, typer.Option(help="only this order (repeatable)")] = None,
    only: Annotated[
        list[str] | None,
        typer.Option("--only", help="patches, events or deadLetters (repeatable); default all"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
    count: Annotated[int | None, typer.Option(help="exit after this many matching records")] = None,
    timeout: Annotated[
        float | None,
        typer.Option(help="exit after this many seconds (status 1 if --count was not reached)"),
    ] = None,
    broker: BrokerOpt = None,
    topics_file: TopicsOpt = None,
    config_file: ConfigOpt = None,
) -> None:
    """Print order-patches, order-events and dead letters as they arrive (Ctrl-C to stop)."""
    roles = list(only or ROLES)
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise fail(f"--only takes {', '.join(ROLES)}, not {', '.join(unknown)}")
    try:
        catalog = load_topics(topics_file)
    except TopicsFileError as exc:
        raise fail(str(exc)) from None
    config = config_from({**connection_flags, "broker": broker}, config_file)
    if not config.broker:
        raise fail("records are read from a running Kafka: give --broker or RETURNHOOK_BROKER")
    reach(config)
    connection = config.connection_only()
    by_name = {catalog.by_role()[role].name: role for role in roles}
    try:
        asyncio.run(verify_topics(connection, catalog, roles))
    except (TopicsNotReadyError, KafkaUnreachableError) as exc:
        raise fail(str(exc)) from None

    async def follow() -> int:
        shown = 0
        deadline = time.monotonic() + timeout if timeout is not None else None
        records = follow_topics(connection, list(by_name), from_beginning=from_beginning)
        try:
            while count is None or shown < count:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                try:
                    record = await asyncio.wait_for(anext(records), left)
                except TimeoutError:
                    break
                role = by_name[record.topic]
                fields = record_fields(role, record.key, record.value)
                if not matches(fields, tenant or [], order or []):
                    continue
                shown += 1
                if as_json:
                    line = {"topic": record.topic, "role": role, "record": _without(fields)}
                    out.print(
                        orjson.dumps(line).decode(), highlight=False, markup=False, soft_wrap=True
                    )
                else:
                    out.print(
                        describe_record(role, fields), highlight=False, markup=False, soft_wrap=True
                    )
        finally:
            await records.aclose()
        return shown

    try:
        shown = asyncio.run(follow())
    except KeyboardInterrupt:
        raise typer.Exit(code=130) from None
    if count is not None and shown < count:
        raise fail(f"{shown} of {count} record(s) within {timeout:g} s")


def _without(fields: dict[str, Any]) -> dict[str, Any]:
    """The record as written (the filter's helper fields dropped)."""
    return {k: v for k, v in fields.items() if k not in {"tenant", "order"}}
