"""Reading the compacted settings topic back, for ``settings show``/``list`` and replays."""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.kafka.connection import Connectable, connection_of


async def read_settings_topic(
    target: Connectable, topic: str, *, timeout: float = 15.0, idle: float = 1.0
) -> dict[str, bytes]:
    """The last value per tenant (deletes drop the tenant), read from the beginning.

    Stops at the fetch highwater of every partition (the embedded test broker misreports end
    offsets after batched writes), or after ``idle`` seconds without records.
    """
    consumer = AIOKafkaConsumer(
        **connection_of(target).aiokafka_options(),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=int(timeout * 1000),
        fetch_max_wait_ms=100,
    )
    await asyncio.wait_for(consumer.start(), timeout)
    latest: dict[str, bytes] = {}
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return latest
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        deadline = time.monotonic() + timeout
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            batches = await consumer.getmany(*tps, timeout_ms=200)
            for records in batches.values():
                for record in records:
                    if record.key is None:
                        continue
                    tenant = record.key.decode("utf-8", "replace")
                    if record.value is None:
                        latest.pop(tenant, None)
                    else:
                        latest[tenant] = record.value
            if batches:
                quiet_since = time.monotonic()
            if await _caught_up(consumer, tps) or time.monotonic() - quiet_since > idle:
                break
        return latest
    finally:
        await consumer.stop()


async def _caught_up(consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> bool:
    for tp in tps:
        highwater = consumer.highwater(tp)
        if highwater is None or await consumer.position(tp) < highwater:
            return False
    return True
