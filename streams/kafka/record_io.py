"""Producing a few records and following topics: the Kafka part of ``send`` and ``tail``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.structs import RecordMetadata

from streams.kafka.connection import Connectable, connection_of


async def produce_records(
    target: Connectable,
    topic: str,
    records: Sequence[tuple[bytes, bytes]],
    *,
    timeout: float = 15.0,
) -> list[RecordMetadata]:
    """Sends (key, value) pairs in order; returns once the broker acknowledged every one."""
    producer = AIOKafkaProducer(
        **connection_of(target).producer_options(),
        acks="all",
        request_timeout_ms=int(timeout * 1000),
    )
    try:
        await asyncio.wait_for(producer.start(), timeout)
        return [await producer.send_and_wait(topic, value=v, key=k) for k, v in records]
    finally:
        await producer.stop()


async def follow_topics(
    target: Connectable, topics: Sequence[str], *, from_beginning: bool, timeout: float = 15.0
) -> AsyncIterator[ConsumerRecord]:
    """Every record of ``topics`` as it arrives: no consumer group, nothing committed.

    Without ``from_beginning`` it starts at each partition's end. (On the embedded broker end
    offsets can lag after batched writes, so a few older records may show.)
    """
    consumer = AIOKafkaConsumer(
        **connection_of(target).aiokafka_options(),
        group_id=None,
        enable_auto_commit=False,
        request_timeout_ms=int(timeout * 1000),
        fetch_max_wait_ms=200,
    )
    await asyncio.wait_for(consumer.start(), timeout)
    try:
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        consumer.assign(partitions)
        if from_beginning:
            await consumer.seek_to_beginning(*partitions)
        else:
            await consumer.seek_to_end(*partitions)
        while True:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    yield record
    finally:
        await consumer.stop()
