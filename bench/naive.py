"""The naive step: a minimal faust agent that awaits the webhook for each event in turn.

What a straightforward port of the Omnium step looks like: one agent, `async for` over the
stream, decode, POST the order, read the answer, send the order-event and await its ack, next
event. No per-order lanes, no concurrency, no retries, no settings table (the tenants' URLs come
from a JSON file). It writes order-events with the same `sourceEventId`/`actionStatus` fields as
returnhook, so the bench measures both the same way.

    python -m bench.naive --broker HOST:PORT --topics-file topics.yaml --app-id ID \
        --tenants-file tenants.json
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import aiohttp
import faust
import orjson

from streams.kafka.topics import load_topics


def build_app(
    broker: str, app_id: str, input_topic: str, events_topic: str, tenants: dict[str, Any]
) -> faust.App:
    app = faust.App(
        app_id,
        broker=f"kafka://{broker}",
        store="memory://",
        processing_guarantee="at_least_once",
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=6.0,
        broker_heartbeat_interval=1.0,
        broker_rebalance_timeout=6.0,
        broker_request_timeout=30.0,
        producer_request_timeout=30.0,
        topic_disable_leader=True,
        topic_allow_declare=False,
        web_enabled=False,
    )
    raw: dict[str, Any] = {
        "key_type": bytes,
        "value_type": bytes,
        "key_serializer": "raw",
        "value_serializer": "raw",
    }
    source = app.topic(input_topic, **raw)
    sink = app.topic(events_topic, **raw)
    session: dict[str, aiohttp.ClientSession] = {}

    @app.agent(source)
    async def webhook_step(stream: Any) -> None:
        async for event in stream.events():
            if "s" not in session:
                session["s"] = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
            data = orjson.loads(event.message.value)
            tenant = tenants[data["tenantId"]]
            order = data["order"]
            body = orjson.dumps(
                {
                    "Value": order,
                    "WorkflowStep": tenant["step"],
                    "ReturnOrderFormId": order["returnOrderForms"][-1]["returnId"],
                }
            )
            started = time.monotonic()
            try:
                async with session["s"].post(
                    tenant["url"], data=body, headers=tenant["headers"]
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
                "tenantId": data["tenantId"],
                "orderId": data.get("orderId") or order.get("id"),
                "sourceEventId": data.get("eventId"),
                "category": "Exported",
                "actionStatus": action,
                "httpStatus": status,
                "durationMs": int((time.monotonic() - started) * 1000),
            }
            await (await sink.send(key=event.message.key, value=orjson.dumps(outcome)))

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="the naive step, as a faust worker")
    parser.add_argument("--broker", required=True)
    parser.add_argument("--topics-file", required=True, type=Path)
    parser.add_argument("--app-id", required=True)
    parser.add_argument("--tenants-file", required=True, type=Path)
    args = parser.parse_args()
    catalog = load_topics(args.topics_file)
    tenants = orjson.loads(args.tenants_file.read_bytes())
    app = build_app(args.broker, args.app_id, catalog.input.name, catalog.events.name, tenants)
    worker = faust.Worker(app, loglevel="INFO", quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
