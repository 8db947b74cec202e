"""Traffic for tests that run workers on the real broker: tenants, events, watchers.

- `settings_document(tenant, url)`: one tenant whose only step calls `url`.
- `return_event(tenant, order_id, seq)`: a "Returned" event; `seq` travels in the order body
  (`Value.seq` in the webhook request) and in the eventId, so the receiver can tell the order.
- `Producer`: one long-lived producer for trickling events to chosen partitions.
- `TopicWatcher`: reads a topic from the beginning in the background, for polling with timeouts.
- `assigned_partitions(worker, topic)`: what a worker's log says the group last gave it.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, Self

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.structs import RecordMetadata

from models.settings import TenantSettings
from streams.core.identity import delivery_id, record_id
from streams.kafka.settings_file import publish_settings
from tests.conftest import TestTopics
from tests.integration.worker_process import WorkerProcess
from tests.kafka_helpers import committed_offsets, partition_count, read_topic
from tests.receiver import RecordedRequest

STEP = "WebhookReturnWorkflowStep"
TIMESTAMP = "2026-03-01T10:00:00Z"


# --- inputs ------------------------------------------------------------------------------------


def settings_document(tenant: str, url: str) -> dict:
    """A tenant with one active webhook step calling `url`."""
    return {
        "tenantId": tenant,
        "returnWorkflow": [
            {
                "name": STEP,
                "active": True,
                "connector": "Webhook",
                "stopOnError": False,
                "properties": [{"key": "Host", "value": url}],
            }
        ],
    }


async def publish(bootstrap: str, topics: TestTopics, documents: Sequence[dict]) -> None:
    tenants = [TenantSettings.model_validate(d) for d in documents]
    await publish_settings(bootstrap, topics.catalog.settings.name, tenants)


def event_id(order_id: str, seq: int) -> str:
    return f"ev-{order_id}-{seq}"


def return_event(tenant: str, order_id: str, seq: int) -> bytes:
    order = {"id": order_id, "status": "Returned", "seq": seq, "lines": []}
    return orjson.dumps(
        {
            "eventId": event_id(order_id, seq),
            "tenantId": tenant,
            "orderId": order_id,
            "status": "Returned",
            "previousStatus": "Completed",
            "timestamp": TIMESTAMP,
            "order": order,
        }
    )


def outcome_id(tenant: str, order_id: str, seq: int, step_index: int = 0) -> str:
    """The id of the order-event the worker writes for one input and step."""
    return record_id(delivery_id(tenant, event_id(order_id, seq), step_index), "event")


def request_order(request: RecordedRequest) -> str:
    return str(request.json()["Value"]["id"])


def request_seq(request: RecordedRequest) -> int:
    return int(request.json()["Value"]["seq"])


# --- producing and reading ---------------------------------------------------------------------


class Producer:
    """`async with Producer(bootstrap) as p: await p.send(topic, key, value, partition=…)`."""

    def __init__(self, bootstrap: str) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", enable_idempotence=False
        )
        self._pending: list[asyncio.Future[RecordMetadata]] = []

    async def __aenter__(self) -> Self:
        await self._producer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            await self.flush()
        finally:
            await self._producer.stop()

    async def send(
        self, topic: str, key: str, value: bytes, *, partition: int | None = None
    ) -> None:
        self._pending.append(
            await self._producer.send(topic, value=value, key=key.encode(), partition=partition)
        )

    async def flush(self) -> list[RecordMetadata]:
        """Waits until the broker acknowledged everything sent so far."""
        pending, self._pending = self._pending, []
        return list(await asyncio.gather(*pending))


class TopicWatcher:
    """Every record of a topic, from the beginning, kept up to date by a background task."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.records: list[ConsumerRecord] = []
        self.values: list[dict] = []
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        partitions = await partition_count(self.bootstrap, self.topic)
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=100,  # the test broker holds each fetch for its full max wait
        )
        await self._consumer.start()
        self._consumer.assign([TopicPartition(self.topic, p) for p in range(partitions)])
        await self._consumer.seek_to_beginning()
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._consumer is not None:
            await self._consumer.stop()

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            batches = await self._consumer.getmany(timeout_ms=200)
            for batch in batches.values():
                for record in batch:
                    self.records.append(record)
                    self.values.append(orjson.loads(record.value))

    async def wait_until(
        self, done: Callable[[list[dict]], bool], *, timeout: float, what: str
    ) -> float:
        """Polls until `done(values)`; returns the seconds it took, AssertionError at timeout."""
        started = time.monotonic()
        while not done(self.values):
            if self._task is not None and self._task.done():
                self._task.result()  # the reader died: show why
            if time.monotonic() - started > timeout:
                raise AssertionError(
                    f"{what}: not reached within {timeout:g} s ({len(self.values)} records read)"
                )
            await asyncio.sleep(0.05)
        return time.monotonic() - started


def ids_seen(values: list[dict], tenant: str | None = None) -> set[str]:
    return {v["id"] for v in values if tenant is None or v.get("tenantId") == tenant}


async def records_per_partition(
    bootstrap: str, topic: str, *, expected_total: int, timeout: float = 30.0
) -> dict[int, int]:
    """Counted by reading (the test broker's end offsets are wrong after batched writes)."""
    records = await read_topic(
        bootstrap, topic, min_count=expected_total, timeout=timeout, idle=1.0
    )
    assert len(records) == expected_total, f"{topic}: read {len(records)} of {expected_total}"
    counts = Counter(r.partition for r in records)
    partitions = await partition_count(bootstrap, topic)
    return {p: counts.get(p, 0) for p in range(partitions)}


async def wait_committed(
    bootstrap: str, group: str, topic: str, expected: dict[int, int], *, timeout: float
) -> float:
    """Polls the group's committed offsets until they equal `expected`; returns the seconds."""
    started = time.monotonic()
    committed: dict[int, Any] = {}
    while True:
        committed = await committed_offsets(bootstrap, group, topic, len(expected))
        # A partition nothing was ever written to has nothing to commit.
        normalized = {p: (o if o is not None else 0) for p, o in committed.items()}
        if normalized == expected:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(
                f"committed offsets of {group} on {topic} after {timeout:g} s: {committed}, "
                f"records per partition: {expected}"
            )
        await asyncio.sleep(0.5)


# --- workers -----------------------------------------------------------------------------------

_ASSIGNED_AT = "Setting newly assigned partitions"


def assigned_partitions(worker: WorkerProcess, topic: str) -> set[int]:
    """The partitions of `topic` in the worker's latest assignment, read from its log.

    aiokafka logs "Setting newly assigned partitions <set> for group <id>"; the set is either
    aiokafka's repr (`TopicPartition(topic='t', partition=3)`) or, when faust's log formatter
    gets to it, a table with `| <topic> | {0-3, 7} |` rows. No line or no such topic: empty.
    """
    text = worker.log_text()
    start = text.rfind(_ASSIGNED_AT)
    if start < 0:
        return set()
    block = text[start:].split(" for group ", 1)[0]
    partitions = {
        int(n)
        for n in re.findall(
            rf"TopicPartition\(topic='{re.escape(topic)}', partition=(\d+)\)", block
        )
    }
    row = re.search(rf"\|\s*{re.escape(topic)}\s*\|\s*\{{([^}}]*)\}}\s*\|", block)
    if row is not None:
        for part in row.group(1).split(","):
            part = part.strip()
            if part:
                low, _, high = part.partition("-")
                partitions.update(range(int(low), int(high or low) + 1))
    return partitions
