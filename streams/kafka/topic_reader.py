"""Reading a whole (small) topic from the beginning to where it ends now."""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import ConsumerRecord

from streams.kafka.connection import Connectable, connection_of


async def existing_topics(target: Connectable, *, timeout: float = 10.0) -> set[str]:
    """Names of the cluster's topics. Never names one: that would create it on brokers with
    auto-creation on."""
    admin = AIOKafkaAdminClient(
        **connection_of(target).aiokafka_options(),
        request_timeout_ms=max(1000, int(timeout * 1000)),
    )
    async with asyncio.timeout(timeout):
        await admin.start()
        try:
            described = await admin.describe_topics()
        finally:
            await admin.close()
    return {t["topic"] for t in described if not t.get("error_code")}


async def read_whole_topic(
    target: Connectable, topic: str, *, timeout: float = 30.0, idle: float = 1.0
) -> list[ConsumerRecord]:
    """Every record of ``topic``, partition by partition in offset order.

    Stops at the fetch highwater of every partition (the embedded test broker misreports end
    offsets after batched writes), or after ``idle`` seconds without records.
    """
    consumer = AIOKafkaConsumer(
        **connection_of(target).aiokafka_options(),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=int(timeout * 1000),
        fetch_max_wait_ms=100,
        max_partition_fetch_bytes=6 * 1024 * 1024,
    )
    await asyncio.wait_for(consumer.start(), timeout)
    records: list[ConsumerRecord] = []
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return records
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        deadline = time.monotonic() + timeout
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            batches = await consumer.getmany(*tps, timeout_ms=200)
            for batch in batches.values():
                records.extend(batch)
            if batches:
                quiet_since = time.monotonic()
            if await _caught_up(consumer, tps) or time.monotonic() - quiet_since > idle:
                break
        return sorted(records, key=lambda r: (r.partition, r.offset))
    finally:
        await consumer.stop()


async def _caught_up(consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> bool:
    for tp in tps:
        highwater = consumer.highwater(tp)
        if highwater is None or await consumer.position(tp) < highwater:
            return False
    return True
