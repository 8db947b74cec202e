"""The output records of every lane that finishes in one loop iteration, sent together.

aiokafka's ``send`` costs a future, a partition lookup and a metadata wait per record; the
worker sends two to four records per event. Here the records handed over in one loop iteration
go out as one ``BatchBuilder`` per partition (``send_batch``): one future per partition, and
each caller waits for the batches that hold its records. Records keep their order within a
partition (batches of one flush are appended in order, flushes run one after the other), and
partitions are aiokafka's own (the producer's partitioner over the topic's partitions).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

#: (topic, key, value, headers) of one record.
OutgoingRecord = tuple[str, bytes | None, bytes, Sequence[tuple[str, bytes]] | None]


class OutputBatches:
    """``send`` hands records over; the returned future is done once the broker has them all."""

    def __init__(self, producer: Callable[[], Any]) -> None:
        self._producer = producer
        """The started AIOKafkaProducer (asked for at each flush: it exists once faust started)."""
        self._pending: list[tuple[Sequence[OutgoingRecord], asyncio.Future[None]]] = []
        self._flusher: asyncio.Future[None] | None = None

    def send(self, records: Sequence[OutgoingRecord]) -> asyncio.Future[None]:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        if not records:
            done.set_result(None)
            return done
        self._pending.append((records, done))
        if len(self._pending) == 1:
            loop.call_soon(self._start_flush)
        return done

    def _start_flush(self) -> None:
        # One flusher at a time: records handed over while it waits for the broker to take
        # the previous batches go out together next (bigger batches, a partition's order kept).
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.ensure_future(self._flush())
            self._flusher.add_done_callback(_retrieve)

    async def _flush(self) -> None:
        while self._pending:
            pending, self._pending = self._pending, []
            try:
                waits = await self._send(pending)
            except BaseException as exc:
                for _, done in pending:
                    if not done.done():
                        done.set_exception(exc)
                raise
            for (_, done), futures in zip(pending, waits, strict=True):
                _settle_when_all(done, futures)

    async def _send(
        self, pending: list[tuple[Sequence[OutgoingRecord], asyncio.Future[None]]]
    ) -> list[list[asyncio.Future[Any]]]:
        """Appends every record to its partition's batch; each caller's batch futures."""
        producer = self._producer()
        partitioner = producer._partitioner
        partitions: dict[str, list[int]] = {}
        batches: dict[tuple[str, int], Any] = {}
        # Index of the batch (in ``sent`` once sent) each caller's records went to.
        uses: list[list[tuple[str, int, int]]] = []
        generation: dict[tuple[str, int], int] = {}
        queued: dict[tuple[str, int, int], asyncio.Future[Any]] = {}
        for records, _ in pending:
            mine: list[tuple[str, int, int]] = []
            for topic, key, value, headers in records:
                known = partitions.get(topic)
                if known is None:
                    known = partitions[topic] = sorted(await producer.partitions_for(topic))
                partition = partitioner(key, known, known)
                tp = (topic, partition)
                batch = batches.get(tp)
                if batch is None:
                    batch = batches[tp] = producer.create_batch()
                    generation.setdefault(tp, 0)
                if batch.append(timestamp=None, key=key, value=value, headers=headers) is None:
                    # Full: send it, and start the partition's next batch with this record.
                    batch.close()
                    slot = (topic, partition, generation[tp])
                    queued[slot] = await producer.send_batch(batch, topic, partition=partition)
                    generation[tp] += 1
                    batch = batches[tp] = producer.create_batch()
                    batch.append(timestamp=None, key=key, value=value, headers=headers)
                mine.append((topic, partition, generation[tp]))
            uses.append(mine)
        for (topic, partition), batch in batches.items():
            batch.close()
            slot = (topic, partition, generation[(topic, partition)])
            queued[slot] = await producer.send_batch(batch, topic, partition=partition)
        return [list({slot: queued[slot] for slot in mine}.values()) for mine in uses]


def _settle_when_all(done: asyncio.Future[None], futures: list[asyncio.Future[Any]]) -> None:
    """``done`` gets the first failure of ``futures``, or None once all of them succeeded."""
    left = len(futures)

    def one_done(future: asyncio.Future[Any]) -> None:
        nonlocal left
        left -= 1
        if done.done():
            return
        if future.cancelled():
            done.cancel()
        elif future.exception() is not None:
            done.set_exception(future.exception())  # type: ignore[arg-type]
        elif not left:
            done.set_result(None)

    for future in futures:
        future.add_done_callback(one_done)


def _retrieve(task: asyncio.Future[None]) -> None:
    """A failed flush has told its callers; this keeps asyncio from logging it again."""
    if not task.cancelled():
        task.exception()
