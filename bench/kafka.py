"""Topics, producing input, and reading outcomes back with their Kafka timestamps."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.data import Event
from streams.kafka.topic_admin import apply_topics
from streams.kafka.topics import REPO_TOPICS_FILE, TopicCatalog, dump_topics, load_topics

PARTITIONS = 12
MAX_REQUEST_BYTES = 6 * 1024 * 1024


def make_catalog(prefix: str, directory: Path) -> tuple[TopicCatalog, Path]:
    """The repo's topics renamed `<name>-<prefix>-<random>`: 12 partitions, settings 1."""
    suffix = f"{prefix}-{uuid.uuid4().hex[:6]}"
    base = load_topics(REPO_TOPICS_FILE)
    catalog = TopicCatalog.model_validate(
        {
            role: spec.model_copy(
                update={
                    "name": f"{spec.name}-{suffix}",
                    "partitions": 1 if role == "settings" else PARTITIONS,
                    "replication_factor": 1,
                }
            )
            for role, spec in base.by_role().items()
        }
    )
    path = dump_topics(catalog, directory / f"topics-{suffix}.yaml")
    return catalog, path


async def create_topics(bootstrap: str, catalog: TopicCatalog) -> None:
    await apply_topics(bootstrap, catalog)


async def create_topic(bootstrap: str, name: str, partitions: int = PARTITIONS) -> None:
    """One plain topic (the Kafka ceiling's own input and output)."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        await admin.close()


def producer(bootstrap: str, *, linger_ms: int = 5) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks=1,
        linger_ms=linger_ms,
        max_batch_size=256 * 1024,
        max_request_size=MAX_REQUEST_BYTES,
        enable_idempotence=False,  # not supported by the embedded broker
        request_timeout_ms=30000,
    )


async def produce_burst(bootstrap: str, topic: str, events: Sequence[Event]) -> dict[str, int]:
    """Sends every event as fast as the client goes; returns eventId → input timestamp (ms).

    The timestamp is set explicitly at each send, so it is the record's Kafka timestamp.
    """
    sent: dict[str, int] = {}
    client = producer(bootstrap)
    await client.start()
    try:
        futures = []
        for event in events:
            ts = int(time.time() * 1000)
            sent[event.event_id] = ts
            futures.append(
                await client.send(topic, value=event.value, key=event.key, timestamp_ms=ts)
            )
        await asyncio.gather(*futures)
    finally:
        await client.stop()
    return sent


async def produce_paced(
    bootstrap: str, topic: str, events: Sequence[Event], offsets_s: Sequence[float]
) -> dict[str, int]:
    """Sends event i at `offsets_s[i]` seconds after the start (open loop, not waiting on acks)."""
    sent: dict[str, int] = {}
    client = producer(bootstrap, linger_ms=0)
    await client.start()
    try:
        futures = []
        start = time.monotonic()
        i = 0
        while i < len(events):
            now = time.monotonic() - start
            while i < len(events) and offsets_s[i] <= now:
                event = events[i]
                ts = int(time.time() * 1000)
                sent[event.event_id] = ts
                futures.append(
                    await client.send(topic, value=event.value, key=event.key, timestamp_ms=ts)
                )
                i += 1
            if i < len(events):
                await asyncio.sleep(max(0.001, offsets_s[i] - (time.monotonic() - start)))
        await asyncio.gather(*futures)
    finally:
        await client.stop()
    return sent


@dataclass(frozen=True)
class Outcome:
    source_event_id: str
    tenant_id: str | None
    action_status: str | None
    timestamp_ms: int
    """The outcome record's Kafka timestamp (set by the worker's producer when it sent it)."""
    read_ms: int
    """When the bench read it (later than `timestamp_ms` by the reader's own fetch wait)."""


class OutcomeCollector:
    """Reads an order-events topic from the beginning in the background."""

    def __init__(self, bootstrap: str, topic: str, partitions: int = PARTITIONS) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.partitions = partitions
        self.outcomes: dict[str, Outcome] = {}
        self.duplicates = 0
        self.records = 0
        self._pending: set[str] = set()
        self._done = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> OutcomeCollector:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=50,  # the embedded broker holds every fetch for its max wait
            max_partition_fetch_bytes=MAX_REQUEST_BYTES,
        )
        await self._consumer.start()
        self._consumer.assign([TopicPartition(self.topic, p) for p in range(self.partitions)])
        await self._consumer.seek_to_beginning()
        self._task = asyncio.create_task(self._run())
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._consumer is not None:
            await self._consumer.stop()

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            batches = await self._consumer.getmany(timeout_ms=100, max_records=10_000)
            read_ms = int(time.time() * 1000)
            for records in batches.values():
                for record in records:
                    self.records += 1
                    self._add(record.value, record.timestamp, read_ms)
            if not self._pending:
                self._done.set()

    def _add(self, value: bytes | None, timestamp_ms: int, read_ms: int) -> None:
        try:
            data = orjson.loads(value or b"")
        except orjson.JSONDecodeError:
            return
        source = data.get("sourceEventId")
        if not source:
            return
        if source in self.outcomes:
            self.duplicates += 1
            return
        self.outcomes[source] = Outcome(
            source_event_id=source,
            tenant_id=data.get("tenantId"),
            action_status=data.get("actionStatus"),
            timestamp_ms=timestamp_ms,
            read_ms=read_ms,
        )
        self._pending.discard(source)

    async def wait_for(self, event_ids: Iterable[str], timeout: float) -> set[str]:
        """Waits until every id has an outcome; returns the ids still missing at `timeout`."""
        self._pending = {i for i in event_ids if i not in self.outcomes}
        self._done = asyncio.Event()
        if self._pending:
            try:
                await asyncio.wait_for(self._done.wait(), timeout)
            except TimeoutError:
                pass
        missing = set(self._pending)
        self._pending = set()
        return missing

    def pending_count(self) -> int:
        return len(self._pending)
