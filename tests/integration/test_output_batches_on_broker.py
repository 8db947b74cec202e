"""OutputBatches against the real broker: partitions as aiokafka's own, order kept, full batches.

Small producer batches (1 KB) make every flush send several batches per partition, and the
callers' records arrive across two topics in one loop iteration and in a second flush.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2

from streams.worker.key_partitioner import KeyPartitioner
from streams.worker.output_batches import OutputBatches
from tests.conftest import MakeTopics
from tests.kafka_helpers import read_topic


async def test_records_land_on_their_keys_partitions_in_order(make_topics: MakeTopics) -> None:
    topics = make_topics(partitions=3)
    events, attempts = topics.catalog.events.name, topics.catalog.attempts.name
    producer = AIOKafkaProducer(
        bootstrap_servers=topics.bootstrap,
        acks="all",
        enable_idempotence=False,
        max_batch_size=1024,
        partitioner=KeyPartitioner(),
    )
    await producer.start()
    try:
        batches = OutputBatches(lambda: producer)
        headers = [("traceparent", b"00-abc")]

        def records(order: int, n: int) -> list[tuple[str, bytes | None, bytes, list | None]]:
            key = f"order-{order}".encode()
            value = f"{order}:{n}:".encode() + b"x" * 300  # three fill a 1 KB batch
            return [(attempts, key, value, None), (events, key, value, headers)]

        first = [batches.send(records(order, 0)) for order in range(8)]
        await asyncio.sleep(0)  # the flush is scheduled: these wait for it or the next one
        second = [batches.send(records(order, n)) for order in range(8) for n in (1, 2)]
        await asyncio.wait_for(asyncio.gather(*first, *second), timeout=20)
        assert all(future.done() and future.exception() is None for future in first + second)
    finally:
        await producer.stop()

    for topic in (events, attempts):
        read = await read_topic(topics.bootstrap, topic, min_count=24, idle=0.5)
        assert len(read) == 24
        by_key: dict[bytes, list[bytes]] = defaultdict(list)
        for record in read:
            assert record.key is not None
            assert record.partition == (murmur2(record.key) & 0x7FFFFFFF) % 3
            by_key[record.key].append(record.value.split(b":")[1])
            expected = headers if topic == events else []
            assert list(record.headers) == expected
        assert by_key == {f"order-{order}".encode(): [b"0", b"1", b"2"] for order in range(8)}


async def test_nothing_to_send_is_done_at_once() -> None:
    batches = OutputBatches(lambda: None)
    assert batches.send([]).done()
