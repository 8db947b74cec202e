"""Produce to and read back from real topics in tests.

Reading counts records instead of trusting end offsets: the embedded broker answers
ListOffsets(latest) wrongly after batched writes (see shared notes on the broker).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

Headers = Sequence[tuple[str, bytes]]
Record = tuple[bytes | None, bytes]

# Tansu holds every fetch for its full max wait, so a short wait keeps reads snappy.
_FETCH_MAX_WAIT_MS = 100
_MAX_REQUEST_BYTES = 6 * 1024 * 1024


async def produce(
    bootstrap: str,
    topic: str,
    records: Sequence[Record],
    headers: Headers | None = None,
    *,
    partition: int | None = None,
) -> None:
    """Send `records` (key, value) in order with the same `headers` on each; all acknowledged."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=False,  # InitProducerId is not supported by the test broker
        max_request_size=_MAX_REQUEST_BYTES,
    )
    await producer.start()
    try:
        pending = [
            await producer.send(
                topic,
                value=value,
                key=key,
                partition=partition,
                headers=list(headers) if headers else None,
            )
            for key, value in records
        ]
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def read_topic(
    bootstrap: str,
    topic: str,
    *,
    min_count: int = 0,
    timeout: float = 20.0,
    idle: float = 2.0,
) -> list[ConsumerRecord]:
    """Everything in `topic` so far, all partitions from the beginning, in arrival order.

    Stops once at least `min_count` records are in and nothing new came for `idle` seconds, or
    at `timeout` with whatever was read (assert on the count, so a shortfall shows its data).
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=6000,  # unused without a group; kept so copies of this stay right
        heartbeat_interval_ms=1000,
        fetch_max_wait_ms=_FETCH_MAX_WAIT_MS,
        max_partition_fetch_bytes=_MAX_REQUEST_BYTES,
    )
    partitions = await partition_count(bootstrap, topic)
    await consumer.start()
    records: list[ConsumerRecord] = []
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
        await consumer.seek_to_beginning()
        started = time.monotonic()
        last_new = started
        while True:
            batches = await consumer.getmany(timeout_ms=200)
            now = time.monotonic()
            for batch in batches.values():
                if batch:
                    records.extend(batch)
                    last_new = now
            if len(records) >= min_count and now - last_new >= idle:
                break
            if now - started >= timeout:
                break
    finally:
        await consumer.stop()
    return records


async def partition_count(bootstrap: str, topic: str) -> int:
    """Partitions of an existing topic; LookupError if it does not exist.

    Asks for all topics' metadata: naming one auto-creates it on the test broker.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        for described in await admin.describe_topics():
            if described["topic"] == topic:
                return len(described["partitions"])
    finally:
        await admin.close()
    raise LookupError(f"topic {topic} does not exist on {bootstrap}")


async def committed_offsets(
    bootstrap: str, group_id: str, topic: str, partitions: int
) -> dict[int, int | None]:
    """The group's committed offset per partition; None where it never committed."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        # Partitions must be named: the test broker cannot list all of a group's offsets.
        offsets = await admin.list_consumer_group_offsets(
            group_id, partitions=[TopicPartition(topic, p) for p in range(partitions)]
        )
    finally:
        await admin.close()
    result: dict[int, int | None] = dict.fromkeys(range(partitions))
    for tp, meta in offsets.items():
        if tp.topic == topic and meta.offset >= 0:
            result[tp.partition] = meta.offset
    return result
