"""Tails the progress topic: the latest progress record of each of one group's partitions.

Not a faust GlobalTable: a second one-partition global table makes faust's assignor give every
worker that changelog as active *and* standby, and when it is written to during a rebalance
(which is when progress records matter most), faust's standby recovery path was seen to leave a
worker's input partitions paused for good. A plain consumer (no group, every partition
assigned, from the beginning) keeps the records at hand; ``caught_up()`` waits, at each
assignment, until it has read everything written before, so the ledger sees the previous
owner's last record before the first input record arrives.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.kafka.connection import Connectable, connection_of

log = logging.getLogger(__name__)


class ProgressReader:
    def __init__(self, target: Connectable, topic: str, partitions: int, key_prefix: bytes) -> None:
        """Keeps only keys that start with ``key_prefix`` (this consumer group's records)."""
        self.connection = connection_of(target)
        self.bootstrap = self.connection.bootstrap
        self.topic = topic
        self._tps = [TopicPartition(topic, p) for p in range(partitions)]
        self._prefix = key_prefix
        self._latest: dict[bytes, bytes] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._started = asyncio.Event()
        self.records_read = 0

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(
            **self.connection.aiokafka_options(),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=100,  # the embedded broker holds a fetch for its full max wait
        )
        await consumer.start()
        consumer.assign(self._tps)
        await consumer.seek_to_beginning(*self._tps)
        self._consumer = consumer
        self._task = asyncio.create_task(self._run())
        self._started.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._consumer is not None:
            await self._consumer.stop()

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            batches = await self._consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    self.records_read += 1
                    key = record.key
                    if key is None or not key.startswith(self._prefix):
                        continue
                    if record.value:
                        self._latest[key] = record.value
                    else:
                        self._latest.pop(key, None)  # a tombstone: forget the partition

    def get(self, key: bytes) -> bytes | None:
        return self._latest.get(key)

    async def caught_up(self, timeout: float) -> bool:
        """Waits until everything written before this call has been read; False at timeout.

        End offsets are right here even on the embedded broker: every progress record is
        written as its own batch (see streams/worker/progress.py).
        """
        deadline = time.monotonic() + timeout
        try:
            await asyncio.wait_for(self._started.wait(), timeout)
            assert self._consumer is not None
            consumer = self._consumer
            ends = await asyncio.wait_for(consumer.end_offsets(self._tps), timeout)
            while await self._behind(consumer, ends):
                if self._task is not None and self._task.done():
                    self._task.result()  # the reader died: say why
                if time.monotonic() > deadline:
                    return False
                await asyncio.sleep(0.02)
        except TimeoutError:
            return False
        return True

    @staticmethod
    async def _behind(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
        for tp, end in ends.items():
            if await consumer.position(tp) < end:
                return True
        return False
