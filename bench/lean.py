"""The lean step: what an engineer would write by hand without faust, as a floor for the work.

aiokafka ``getmany`` in a consumer group, each batch decoded with orjson, every call of the batch
posted concurrently under one semaphore (the worker's in-flight limits) over one aiohttp session,
one outcome per event sent and the sends awaited together, then one commit per batch. No per-order
order, no retries, no contiguous acknowledgements, no settings table (tenants from a JSON file),
no logging per event: it is not a design to copy, only a measure of what the libraries cost when
the work goes in batches. Writes the same ``sourceEventId``/``actionStatus`` fields as returnhook.

    python -m bench.lean --broker HOST:PORT --topics-file topics.yaml --app-id ID \
        --tenants-file tenants.json [--max-in-flight 256 --max-in-flight-per-host 64]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener

from streams.kafka.topics import load_topics

log = logging.getLogger("bench.lean")
MAX_REQUEST_BYTES = 6 * 1024 * 1024


class _Ready(ConsumerRebalanceListener):  # type: ignore[misc]
    """Logs the two lines the bench's readiness check looks for (as faust's worker does)."""

    async def on_partitions_revoked(self, revoked: Any) -> None:
        pass

    async def on_partitions_assigned(self, assigned: Any) -> None:
        log.info("Setting newly assigned partitions %s", sorted(str(tp) for tp in assigned))
        log.info("[^Worker]: Ready")


async def run(
    broker: str,
    app_id: str,
    input_topic: str,
    events_topic: str,
    tenants: dict[str, Any],
    max_in_flight: int,
    max_in_flight_per_host: int,
) -> None:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=broker,
        group_id=app_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=100,
        max_partition_fetch_bytes=1024 * 1024,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=broker,
        acks="all",
        linger_ms=0,
        enable_idempotence=False,
        max_request_size=MAX_REQUEST_BYTES,
    )
    connector = aiohttp.TCPConnector(limit=max_in_flight, limit_per_host=max_in_flight_per_host)
    slots = asyncio.Semaphore(max_in_flight)
    headers = {t: {**spec["headers"], "X-Delivery-Count": "1"} for t, spec in tenants.items()}
    await producer.start()
    await consumer.start()
    consumer.subscribe([input_topic], listener=_Ready())
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=30), trust_env=False
    ) as session:

        async def step(key: bytes, value: bytes) -> tuple[bytes, bytes]:
            data = orjson.loads(value)
            tenant_id = data["tenantId"]
            tenant = tenants[tenant_id]
            order = data["order"]
            body = orjson.dumps(
                {
                    "Value": order,
                    "WorkflowStep": tenant["step"],
                    "ReturnOrderFormId": order["returnOrderForms"][-1]["returnId"],
                }
            )
            started = time.monotonic()
            status: int | None
            try:
                async with slots:
                    async with session.post(
                        tenant["url"], data=body, headers=headers[tenant_id]
                    ) as response:
                        status = response.status
                        answer = await response.read()
                if 200 <= status < 300:
                    result = orjson.loads(answer) if answer else {}
                    results = result.get("orderActionExecutionResults") or [{}]
                    action = results[0].get("actionStatus") or "Success"
                else:
                    action = "Error"
            except (aiohttp.ClientError, TimeoutError, ValueError):
                status, action = None, "Error"
            outcome = {
                "tenantId": tenant_id,
                "orderId": data.get("orderId") or order.get("id"),
                "sourceEventId": data.get("eventId"),
                "category": "Exported",
                "actionStatus": action,
                "httpStatus": status,
                "durationMs": int((time.monotonic() - started) * 1000),
            }
            return key, orjson.dumps(outcome)

        try:
            while True:
                batches = await consumer.getmany(timeout_ms=1000, max_records=500)
                records = [r for batch in batches.values() for r in batch]
                if not records:
                    continue
                outcomes = await asyncio.gather(*(step(r.key, r.value) for r in records))
                sends = [
                    await producer.send(events_topic, value, key=key) for key, value in outcomes
                ]
                await asyncio.gather(*sends)
                await consumer.commit()
        finally:
            await consumer.stop()
            await producer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="the lean step, aiokafka + aiohttp by hand")
    parser.add_argument("--broker", required=True)
    parser.add_argument("--topics-file", required=True, type=Path)
    parser.add_argument("--app-id", required=True)
    parser.add_argument("--tenants-file", required=True, type=Path)
    parser.add_argument("--max-in-flight", type=int, default=256)
    parser.add_argument("--max-in-flight-per-host", type=int, default=64)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="[%(asctime)s] %(name)s: %(message)s")
    log.setLevel(logging.INFO)
    catalog = load_topics(args.topics_file)
    tenants = orjson.loads(args.tenants_file.read_bytes())
    try:
        asyncio.run(
            run(
                args.broker,
                args.app_id,
                catalog.input.name,
                catalog.events.name,
                tenants,
                args.max_in_flight,
                args.max_in_flight_per_host,
            )
        )
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
