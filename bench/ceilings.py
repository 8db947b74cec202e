"""The machine's own ceilings, measured in the same run against the same receiver and data.

* HTTP ceiling: a bare aiohttp client posting the same bodies with the same headers and the same
  concurrency limits as the worker (max in flight, max in flight per host), no Kafka.
* Kafka ceiling: a bare aiokafka consume → produce pipe over the same input records (one small
  outcome-sized record out per record in, each batch's sends acknowledged before the next poll,
  as an at-least-once pipe must), no HTTP.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.data import Event, request_headers
from bench.kafka import MAX_REQUEST_BYTES, PARTITIONS, produce_burst


async def http_ceiling(
    events: Sequence[Event], *, max_in_flight: int, max_in_flight_per_host: int, warmup: int = 100
) -> dict[str, Any]:
    """Posts every event's body once; events/s over the whole batch and per-request latency."""
    connector = aiohttp.TCPConnector(limit=max_in_flight, limit_per_host=max_in_flight_per_host)
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=None), trust_env=False
    ) as session:
        headers = [request_headers(e) for e in events]

        async def post(i: int, record: bool) -> None:
            event = events[i]
            started = time.perf_counter()
            async with session.post(event.url, data=event.body, headers=headers[i]) as response:
                await response.read()
                if record:
                    statuses[response.status] += 1
            if record:
                latencies.append((time.perf_counter() - started) * 1000)

        # Warm the connection pools (not measured).
        await asyncio.gather(*(post(i % len(events), False) for i in range(warmup)))
        jobs = iter(range(len(events)))

        async def worker() -> None:
            for i in jobs:
                await post(i, True)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(max_in_flight)))
        elapsed = time.perf_counter() - started
    return {
        "events": len(events),
        "seconds": round(elapsed, 3),
        "events_per_s": round(len(events) / elapsed, 1),
        "latencies_ms": latencies,
        "statuses": dict(statuses),
    }


def _outcome_like(key: bytes, n: int) -> bytes:
    """About the size of an order-event record, built without parsing the input (a bare pipe)."""
    return (
        b'{"id":"%d","tenantId":"t0-0","orderId":"%s","sourceEventId":"%d","category":"Exported",'
        b'"step":{"index":0,"name":"WebhookReturnWorkflowStep","connectorId":"erp-returns"},'
        b'"actionStatus":"Success","errorReason":null,"cancelWorkflow":false,'
        b'"continueWorkflow":true,"skippedSteps":[],"attempts":1,"httpStatus":200,'
        b'"durationMs":3,"createdAt":"2025-01-01T00:00:00Z","replayId":null}' % (n, key, n)
    )


async def load_kafka_input(
    bootstrap: str, events: Sequence[Event], records: int, in_topic: str
) -> None:
    """The Kafka ceiling's input: the events, repeated to `records` records."""
    await produce_burst(bootstrap, in_topic, [events[i % len(events)] for i in range(records)])


async def kafka_ceiling(
    bootstrap: str,
    *,
    records: int,
    in_topic: str,
    out_topic: str,
    fetch_max_wait_ms: int = 100,
) -> dict[str, Any]:
    """Pipes `records` input records (loaded by `load_kafka_input`) from in_topic to out_topic."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=fetch_max_wait_ms,
        max_partition_fetch_bytes=1024 * 1024,
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        linger_ms=0,
        enable_idempotence=False,
        max_request_size=MAX_REQUEST_BYTES,
    )
    await consumer.start()
    await producer.start()
    count = 0
    first: float | None = None
    try:
        consumer.assign([TopicPartition(in_topic, p) for p in range(PARTITIONS)])
        await consumer.seek_to_beginning()
        last_new = time.perf_counter()
        while count < records:
            batches = await consumer.getmany(timeout_ms=500, max_records=4000)
            now = time.perf_counter()
            futures = []
            for batch in batches.values():
                for record in batch:
                    if first is None:
                        first = now
                    futures.append(
                        await producer.send(
                            out_topic, key=record.key, value=_outcome_like(record.key, count)
                        )
                    )
                    count += 1
            if futures:
                await asyncio.gather(*futures)
                last_new = time.perf_counter()
            elif now - last_new > 30:
                break
        elapsed = time.perf_counter() - (first or time.perf_counter())
    finally:
        await consumer.stop()
        await producer.stop()
    return {
        "events": count,
        "seconds": round(elapsed, 3),
        "events_per_s": round(count / elapsed, 1) if elapsed > 0 else None,
        "fetch_max_wait_ms": fetch_max_wait_ms,
    }
