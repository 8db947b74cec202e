"""``returnhook dead-letters list`` and ``redrive``: look at what failed, put it back once.

A redrive produces the dead letter's original key, value and headers to the input topic, with
the header ``returnhook-redriven-from: <dead-letter topic>/<partition>/<offset>``. Which dead
letters were redriven is kept on the compacted ``redrives`` topic (key: that reference), so a
second redrive of the same one is refused unless forced, however old the dead letter is (the
input topic's retention is shorter than the dead-letter topic's). The input record is written
first and its marker second: a redrive interrupted between the two can be redriven again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer
from aiokafka.structs import ConsumerRecord
from pydantic import ValidationError

from models.records import DeadLetterRecord
from streams.core.redrive import (
    DeadLetterFilter,
    dead_letter_ref,
    original_record,
    redrive_marker,
    redriven_from,
    refs_redriven,
    tenant_of,
)
from streams.kafka.connection import Connectable, connection_of
from streams.kafka.topic_reader import existing_topics, read_whole_topic
from streams.kafka.topics import TopicCatalog


class DeadLetterError(Exception):
    """The command cannot run (a missing topic, an unreachable broker); one line for the CLI."""


@dataclass(frozen=True)
class DeadLetterEntry:
    ref: str
    timestamp_ms: int
    record: DeadLetterRecord
    tenant: str | None
    redriven: dict | None
    """The marker of an earlier redrive of this one, if any."""

    @property
    def when(self) -> str:
        moment = datetime.fromtimestamp(self.timestamp_ms / 1000, tz=UTC)
        return moment.isoformat(timespec="seconds").replace("+00:00", "Z")

    @property
    def came_from(self) -> str | None:
        """The dead letter whose redrive failed again into this one."""
        return redriven_from(self.record.headers)


@dataclass
class RedriveResult:
    redriven: list[tuple[DeadLetterEntry, int, int]] = field(default_factory=list)
    """(entry, input partition, input offset) of each record put back."""
    refused: list[DeadLetterEntry] = field(default_factory=list)
    """Already redriven, not forced."""


async def list_dead_letters(
    target: Connectable, catalog: TopicCatalog, wanted: DeadLetterFilter, *, timeout: float = 10.0
) -> tuple[list[DeadLetterEntry], int]:
    """The matching dead letters, oldest first, and how many records were not dead letters."""
    await _require_topics(target, catalog, timeout)
    records = await read_whole_topic(target, catalog.dead_letters.name, timeout=timeout + 20)
    markers = await read_whole_topic(target, catalog.redrives.name, timeout=timeout + 20)
    redriven = refs_redriven((m.key, m.value) for m in markers)
    entries: list[DeadLetterEntry] = []
    unreadable = 0
    for record in records:
        entry = _entry(record, redriven)
        if entry is None:
            unreadable += 1
        elif wanted.matches(entry.record, entry.tenant, entry.ref, entry.timestamp_ms):
            entries.append(entry)
    entries.sort(key=lambda e: (e.timestamp_ms, e.ref))
    return entries, unreadable


def _entry(record: ConsumerRecord, redriven: dict[str, dict]) -> DeadLetterEntry | None:
    try:
        dead = DeadLetterRecord.model_validate_json(record.value or b"")
    except ValidationError:
        return None
    ref = dead_letter_ref(record.topic, record.partition, record.offset)
    return DeadLetterEntry(
        ref=ref,
        timestamp_ms=record.timestamp,
        record=dead,
        tenant=tenant_of(dead),
        redriven=redriven.get(ref),
    )


async def redrive(
    target: Connectable,
    catalog: TopicCatalog,
    entries: list[DeadLetterEntry],
    *,
    force: bool = False,
    dry_run: bool = False,
) -> RedriveResult:
    """Puts each entry's original record back on the input topic, once (unless ``force``)."""
    result = RedriveResult()
    todo = []
    for entry in entries:
        if entry.redriven is not None and not force:
            result.refused.append(entry)
        else:
            todo.append(entry)
    if dry_run or not todo:
        result.redriven = [(entry, -1, -1) for entry in todo] if dry_run else []
        return result
    producer = AIOKafkaProducer(
        **connection_of(target).producer_options(),
        acks="all",
        enable_idempotence=False,  # not on the embedded broker; a repeat is told by the marker
        max_request_size=6 * 1024 * 1024,
    )
    await producer.start()
    try:
        for entry in todo:
            original = original_record(entry.record, entry.ref)
            sent = await (
                await producer.send(
                    catalog.input.name,
                    key=original.key,
                    value=original.value,
                    headers=original.headers,
                )
            )
            at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            marker = redrive_marker(entry.ref, sent.topic, sent.partition, sent.offset, at)
            await (await producer.send(catalog.redrives.name, key=entry.ref.encode(), value=marker))
            result.redriven.append((entry, sent.partition, sent.offset))
    finally:
        await producer.stop()
    return result


async def _require_topics(target: Connectable, catalog: TopicCatalog, timeout: float) -> None:
    bootstrap = connection_of(target).bootstrap
    try:
        existing = await existing_topics(target, timeout=timeout)
    except TimeoutError:
        raise DeadLetterError(
            f"cannot reach Kafka at {bootstrap}: no answer within {timeout:g} s"
        ) from None
    except Exception as exc:
        raise DeadLetterError(f"cannot reach Kafka at {bootstrap}: {exc}") from None
    roles = {
        "deadLetters": catalog.dead_letters,
        "redrives": catalog.redrives,
        "input": catalog.input,
    }
    missing = [f"{s.name} ({role})" for role, s in roles.items() if s.name not in existing]
    if missing:
        raise DeadLetterError(
            f"unknown topic(s) on {bootstrap}: {', '.join(missing)}; "
            "check --topics-file or run `returnhook topics apply`"
        )
