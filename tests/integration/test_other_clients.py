"""Records from a client we did not write: librdkafka produces with every codec and with trace
headers; the worker processes all of them, stays up, and what it writes (zstd-compressed, by the
compression option) is read back by librdkafka with the trace headers on both output records."""

from __future__ import annotations

import asyncio
import uuid

import orjson
import pytest

from streams.kafka.connection import connection_of
from tests.conftest import MakeTopics
from tests.integration.conftest import StartWorker
from tests.integration.traffic import publish, return_event
from tests.librdkafka import header, produce, read
from tests.receiver import RecordingReceiver, Reply

pytestmark = pytest.mark.integration

CODECS = ("none", "gzip", "snappy", "lz4", "zstd")
CANCEL = {
    "orderActionExecutionResults": {"cancelWorkflow": True, "errorReason": "rejected"},
    "orderPatch": {"tags": ["seen"]},
}


def _traceparent(n: int) -> str:
    return f"00-{uuid.uuid4().hex}-{n + 1:016x}-01"


async def test_every_codec_with_trace_context_from_librdkafka(
    make_topics: MakeTopics, start_worker: StartWorker, receiver: RecordingReceiver
) -> None:
    topics = make_topics(partitions=2)
    tenant = f"codecs-{uuid.uuid4().hex[:6]}"
    receiver.route("/codecs", lambda request: Reply(200, CANCEL))
    await publish(
        topics.bootstrap,
        topics,
        [
            {
                "tenantId": tenant,
                "returnWorkflow": [
                    {
                        "name": "WebhookReturnWorkflowStep",
                        "properties": [{"key": "Host", "value": receiver.url("/codecs")}],
                    }
                ],
            }
        ],
    )
    worker = start_worker(topics, extra_args=["--compression-type", "zstd"])
    rdkafka = connection_of(topics.bootstrap).librdkafka_config()
    parents = {codec: _traceparent(n) for n, codec in enumerate(CODECS)}
    for codec in CODECS:  # one producer per codec: every batch of it uses that codec
        order = f"o-{codec}"
        headers = [("traceparent", parents[codec].encode()), ("tracestate", b"vendor=1")]
        await asyncio.to_thread(
            produce,
            rdkafka,
            topics.catalog.input.name,
            [(order.encode(), return_event(tenant, order, 1), headers)],
            compression=codec,
        )

    requests = await receiver.wait_for_requests(len(CODECS), path="/codecs", timeout=60)
    by_order = {r.json()["Value"]["id"]: r for r in requests}
    assert set(by_order) == {f"o-{codec}" for codec in CODECS}
    for codec in CODECS:
        assert by_order[f"o-{codec}"].header("traceparent") == parents[codec]
        assert by_order[f"o-{codec}"].header("tracestate") == "vendor=1"

    for role in ("patches", "events"):
        spec = getattr(topics.catalog, role)
        messages = await asyncio.to_thread(
            read, rdkafka, spec.name, spec.partitions, min_count=len(CODECS)
        )
        assert len(messages) == len(CODECS), role
        for message in messages:
            record = orjson.loads(message.value())
            codec = record["orderId"].removeprefix("o-")
            assert header(message, "traceparent") == parents[codec].encode(), (role, codec)
            assert header(message, "tracestate") == b"vendor=1"
    assert worker.running, "the worker must stay up"
