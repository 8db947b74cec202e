"""Issue 7, faults on the real broker: the broker paused under traffic, a flapping receiver, a
receiver that drops connections.

- Broker paused: a broker of its own (the session's one must not stall other tests) is SIGSTOPped
  for 20 s while events flow at 10/s, then SIGCONTed. The worker must still run, every input must
  have its order-event, and the group's committed offsets must reach the end of every partition.
- Flapping: the receiver answers 500 and 200 by a script per order (one that never recovers,
  ones that recover on attempt 1, 2 or 4) and, for the rest, alternates across all requests;
  every delivery follows the retry rules (attempts 1, 2, … in the order the receiver saw them, a
  500 retried, a 200 final, never more than 4 attempts, and the order-event says what the last
  answer was), and both ends, giving up and recovering, happen in every run.
- Dropped connections: the connection closes before any answer (`Reply(drop=True)`), or in the
  middle of a 2xx body (a raw server that promises more bytes than it sends); both are retried
  and succeed on the second attempt.

Every worker carries planted secrets (a bearer token and a signing secret, referenced as
`${shared:NAME}`), and its log, at debug level, must not contain them.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import os
import signal
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.structs import RecordMetadata

from streams.core.identity import delivery_id
from streams.kafka.embedded_broker import EmbeddedBroker
from tests.conftest import MakeTopics, TestTopics, create_topics
from tests.integration.conftest import StartWorker
from tests.integration.traffic import (
    STEP,
    TopicWatcher,
    event_id,
    ids_seen,
    outcome_id,
    publish,
    request_order,
    return_event,
    wait_committed,
)
from tests.integration.worker_process import WorkerProcess
from tests.kafka_helpers import read_topic
from tests.receiver import RecordedRequest, RecordingReceiver, Reply

pytestmark = pytest.mark.integration

# Planted secrets: distinctive, so that a hit in a log can only be a leak.
BEARER_TOKEN = f"tok-{uuid.uuid4().hex}-Fq"
SIGNING_SECRET = "whsec_" + base64.b64encode(os.urandom(24)).decode()
SECRET_ENV = {  # shared by the operator with every tenant of these tests
    "RETURNHOOK_SHARED_SECRET_ERP_TOKEN": BEARER_TOKEN,
    "RETURNHOOK_SHARED_SECRET_SIGNING_SECRET": SIGNING_SECRET,
}
PLANTED = (BEARER_TOKEN, SIGNING_SECRET, SIGNING_SECRET.removeprefix("whsec_"))

MAX_ATTEMPTS = 4  # the worker's default: three retry delays
SUCCESS = {"orderActionExecutionResults": [{"actionStatus": "Success"}]}

# The paused broker: 10 events/s for 40 s, the broker stopped from 10 s to 30 s.
RATE = 10.0
TRAFFIC_SECONDS = 40.0
PAUSE_AT = 10.0
PAUSE_SECONDS = 20.0
PAUSE_TEST_BUDGET = 90.0
ORDERS = 20


def _names(label: str) -> tuple[str, str]:
    """A tenant and an order-id prefix unique to this run."""
    suffix = uuid.uuid4().hex[:6]
    return f"{label}-{suffix}", f"o-{label}-{suffix}"


def signed_settings(tenant: str, url: str) -> dict:
    """One step through a connector with a bearer token and a signing secret, both from env."""
    return {
        "tenantId": tenant,
        "connectors": [
            {
                "name": "Webhook",
                "connectorId": "erp",
                "host": url,
                "bearerToken": "${shared:ERP_TOKEN}",
                "signingSecrets": ["${shared:SIGNING_SECRET}"],
            }
        ],
        "returnWorkflow": [
            {
                "name": STEP,
                "active": True,
                "connector": "Webhook",
                "connectorId": "erp",
                "stopOnError": False,
                "properties": [],
            }
        ],
    }


def assert_no_secrets(worker: WorkerProcess) -> None:
    log = worker.log_text()
    assert "webhook attempt 1/4 to " in log, "the worker did not log at debug level"
    for secret in PLANTED:
        assert secret not in log, f"a planted secret is in the worker log {worker.log_path}"


def key_of(tenant: str, order_id: str, seq: int) -> str:
    """The Idempotency-Key (delivery id) of one input's first step."""
    return delivery_id(tenant, event_id(order_id, seq), 0)


def by_key(requests: list[RecordedRequest]) -> dict[str, list[RecordedRequest]]:
    grouped: dict[str, list[RecordedRequest]] = defaultdict(list)
    for request in sorted(requests, key=lambda r: r.received_at):
        grouped[request.header("Idempotency-Key") or "<none>"].append(request)
    return dict(grouped)


def events_by_id(values: list[dict]) -> dict[str, dict]:
    """Order-events by record id; a redelivered input's duplicates must say the same."""
    found: dict[str, dict] = {}
    for value in values:
        earlier = found.setdefault(value["id"], value)
        assert {k: v for k, v in earlier.items() if k != "durationMs"} == {
            k: v for k, v in value.items() if k != "durationMs"
        }, f"two different order-events with id {value['id']}"
    return found


async def produce_events(
    bootstrap: str, topic: str, records: list[tuple[str, bytes]]
) -> list[RecordMetadata]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False)
    await producer.start()
    try:
        futures = [
            await producer.send(topic, key=key.encode(), value=value) for key, value in records
        ]
        return list(await asyncio.gather(*futures))
    finally:
        await producer.stop()


async def start(start_worker: StartWorker, topics: TestTopics, **opts: Any) -> WorkerProcess:
    """A ready worker at debug level with the planted secrets; the loop keeps serving meanwhile."""
    env = {**SECRET_ENV, **opts.pop("env", {})}
    return await asyncio.to_thread(start_worker, topics, log_level="debug", env=env, **opts)


# --- the broker paused under traffic -----------------------------------------------------------


async def _send_until_acknowledged(
    producer: AIOKafkaProducer, topic: str, key: bytes, value: bytes, deadline: float
) -> RecordMetadata:
    """One record, resent after any error or a stall, until the broker acknowledges it.

    A resend after a stall may leave a duplicate on the topic; the worker's outputs are
    deduplicated by record id and the offsets are counted by reading, so that is harmless.
    """
    while True:
        try:
            future = await producer.send(topic, key=key, value=value)
            async with asyncio.timeout(35.0):
                return await asyncio.shield(future)
        except (KafkaError, TimeoutError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


async def steady_traffic(
    bootstrap: str, topic: str, tenant: str, prefix: str, produced: list[tuple[str, int]]
) -> list[RecordMetadata]:
    """RATE events/s for TRAFFIC_SECONDS, each send in its own task so a stall holds none up."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=False,
        request_timeout_ms=30_000,  # outlasts the pause: in-flight requests are answered after it
        retry_backoff_ms=500,
    )
    await producer.start()
    sends: list[asyncio.Task[RecordMetadata]] = []
    try:
        started = time.monotonic()
        deadline = started + TRAFFIC_SECONDS + 40.0
        for n in range(int(RATE * TRAFFIC_SECONDS)):
            await asyncio.sleep(max(0.0, started + n / RATE - time.monotonic()))
            order_id, seq = f"{prefix}-{n % ORDERS}", n
            value = return_event(tenant, order_id, seq)
            sends.append(
                asyncio.create_task(
                    _send_until_acknowledged(producer, topic, order_id.encode(), value, deadline)
                )
            )
            produced.append((order_id, seq))
        return list(await asyncio.gather(*sends))
    finally:
        for task in sends:
            task.cancel()
        await asyncio.gather(*sends, return_exceptions=True)
        await producer.stop()


@contextlib.asynccontextmanager
async def dedicated_broker(directory: Path) -> AsyncIterator[EmbeddedBroker]:
    broker = EmbeddedBroker(log_path=directory / "paused-broker.log")
    broker.start()
    try:
        yield broker
    finally:
        # Resumed first: a stopped process ignores SIGTERM until it runs again.
        with contextlib.suppress(ProcessLookupError):
            os.kill(broker.pid, signal.SIGCONT)
        broker.stop()


async def _pause_under_traffic(
    broker: EmbeddedBroker,
    directory: Path,
    start_worker: StartWorker,
    receiver: RecordingReceiver,
    started: list[WorkerProcess],
) -> None:
    tenant, prefix = _names("paused")
    receiver.route("/paused", Reply(status=200, body=SUCCESS))
    bootstrap = broker.bootstrap
    topics = await asyncio.to_thread(create_topics, bootstrap, directory, partitions=4)
    await publish(bootstrap, topics, [signed_settings(tenant, receiver.url("/paused"))])
    worker = await start(start_worker, topics)
    started.append(worker)
    input_topic = topics.catalog.input.name

    produced: list[tuple[str, int]] = []
    traffic = asyncio.create_task(steady_traffic(bootstrap, input_topic, tenant, prefix, produced))
    try:
        await asyncio.sleep(PAUSE_AT)
        before_pause = len(receiver.requests)
        os.kill(broker.pid, signal.SIGSTOP)
        paused_at = time.monotonic()
        try:
            await asyncio.sleep(PAUSE_SECONDS)
        finally:
            os.kill(broker.pid, signal.SIGCONT)
            resumed_at = time.monotonic()
        sent = await traffic
    finally:
        traffic.cancel()
        await asyncio.gather(traffic, return_exceptions=True)

    assert worker.running, f"the worker died during the pause: {worker.log_tail()}"
    expected = {outcome_id(tenant, order, seq) for order, seq in produced}
    assert len(expected) == len(produced) == int(RATE * TRAFFIC_SECONDS)
    async with TopicWatcher(bootstrap, topics.catalog.events.name) as events:
        took = await events.wait_until(
            lambda values: expected <= ids_seen(values, tenant),
            timeout=40.0,
            what="an order-event for every input",
        )
    outcomes = events_by_id(events.values)
    assert set(outcomes) == expected  # nothing lost, nothing made up
    assert {o["actionStatus"] for o in outcomes.values()} == {"Success"}

    # Committed offsets reach the end of every partition, counted by reading (the test broker's
    # end offsets are wrong after batched writes; a resent record counts as a record).
    records = await read_topic(bootstrap, input_topic, min_count=len(sent), timeout=20, idle=1.0)
    assert len(records) >= len(sent)
    per_partition = Counter(r.partition for r in records)
    counts = {p: per_partition.get(p, 0) for p in range(4)}
    committing = await wait_committed(bootstrap, worker.app_id, input_topic, counts, timeout=20.0)

    assert worker.running, worker.log_tail()
    assert "stopping the worker" not in worker.log_text()
    # The worker was really working when the broker stopped, and again after it came back.
    assert before_pause > 0
    assert any(r.received_at > resumed_at for r in receiver.requests)
    print(
        f"pause {resumed_at - paused_at:.1f} s; {len(produced)} inputs ({len(records)} records); "
        f"all order-events {took:.1f} s after the traffic, all committed {committing:.1f} s "
        f"later; {len(events.values)} order-events read, {len(receiver.requests)} requests"
    )
    assert_no_secrets(worker)


@pytest.mark.timeout(PAUSE_TEST_BUDGET + 30)
async def test_broker_paused_20s_under_traffic_the_worker_recovers_and_loses_nothing(
    tmp_path: Path, start_worker: StartWorker, receiver: RecordingReceiver
) -> None:
    started: list[WorkerProcess] = []
    try:
        async with asyncio.timeout(PAUSE_TEST_BUDGET), dedicated_broker(tmp_path) as broker:
            try:
                await _pause_under_traffic(broker, tmp_path, start_worker, receiver, started)
            finally:
                # Before the broker goes (dedicated_broker resumes it first if need be): a
                # worker stopping against a dead broker waits out its timeouts.
                for worker in started:
                    await asyncio.to_thread(worker.cleanup)
    except TimeoutError:
        tail = started[0].log_tail() if started else "(no worker started)"
        pytest.fail(f"over the test's {PAUSE_TEST_BUDGET:g} s budget; worker log tail:\n{tail}")


# --- a flapping receiver -------------------------------------------------------------------------


async def test_flapping_receiver_outcomes_follow_the_retry_rules(
    make_topics: MakeTopics, start_worker: StartWorker, receiver: RecordingReceiver
) -> None:
    tenant, prefix = _names("flap")
    # Orders n % 5 == 0..3 follow their script, attempt by attempt: both the give-up branch and
    # the recovering one run in every run. The rest get 500 and 200 in turn across all requests.
    scripts = [[500] * MAX_ATTEMPTS, [200], [500, 200], [500, 500, 500, 200]]
    give_up, recover = {0}, {2, 3}
    answers = itertools.cycle([500, 200])  # across all requests, as they arrive

    def answer(request: RecordedRequest) -> Reply:
        n = int(request_order(request).rsplit("-", 1)[1])
        if n % 5 < len(scripts):
            status = scripts[n % 5][(request.attempt or 1) - 1]
        else:
            status = next(answers)
        return Reply(status=200, body=SUCCESS) if status == 200 else Reply(status=500)

    receiver.route("/flap", answer)
    topics = make_topics(partitions=4)
    await publish(topics.bootstrap, topics, [signed_settings(tenant, receiver.url("/flap"))])
    worker = await start(start_worker, topics)
    inputs = [(f"{prefix}-{n}", n) for n in range(40)]
    await produce_events(
        topics.bootstrap,
        topics.catalog.input.name,
        [(order, return_event(tenant, order, seq)) for order, seq in inputs],
    )
    expected = {outcome_id(tenant, order, seq): key_of(tenant, order, seq) for order, seq in inputs}
    async with TopicWatcher(topics.bootstrap, topics.catalog.events.name) as events:
        await events.wait_until(
            lambda values: set(expected) <= ids_seen(values, tenant),
            timeout=40.0,
            what="an order-event for every input",
        )
    outcomes = events_by_id(events.values)
    assert set(outcomes) == set(expected)
    requests = by_key(receiver.requests_for("/flap"))
    assert set(requests) == set(expected.values())

    recovered: set[int] = set()
    gave_up: set[int] = set()
    for (order, seq), (record_id_, key) in zip(inputs, expected.items(), strict=True):
        outcome, seen = outcomes[record_id_], requests[key]
        statuses = [r.status for r in seen]
        if seq % 5 < len(scripts):
            assert statuses == scripts[seq % 5], (order, statuses)
        assert [r.attempt for r in seen] == list(range(1, len(seen) + 1)), (key, statuses)
        assert len(seen) <= MAX_ATTEMPTS
        assert outcome["attempts"] == len(seen), (outcome, statuses)
        assert outcome["httpStatus"] == statuses[-1]
        # A 500 is retried while attempts are left; a 200 ends the delivery.
        assert all(s == 500 for s in statuses[:-1]), statuses
        if statuses[-1] == 200:
            assert outcome["actionStatus"] == "Success" and outcome["errorReason"] is None
            if len(seen) > 1:
                recovered.add(seq % 5)
        else:
            assert len(seen) == MAX_ATTEMPTS, statuses
            gave_up.add(seq % 5)
            assert outcome["actionStatus"] == "Warning"
            assert (
                outcome["errorReason"]
                == "the webhook answered HTTP 500 on attempt 4 of 4; giving up"
            )
        assert {r.header("X-Max-Delivery-Count") for r in seen} == {str(MAX_ATTEMPTS)}
        assert len({r.body for r in seen}) == 1  # the same request each time
    # Both branches ran, at least for the scripted orders.
    assert give_up <= gave_up and recover <= recovered, (gave_up, recovered)
    assert worker.running
    assert_no_secrets(worker)


# --- dropped connections -------------------------------------------------------------------------


class TruncatingServer:
    """A raw HTTP/1.1 server: the first answer per Idempotency-Key is a 200 whose body stops
    half-way (Content-Length promises more, then the connection closes); later ones are whole.
    """

    PROMISED = orjson.dumps({**SUCCESS, "orderPatch": {"tags": ["x" * 200]}})

    def __init__(self) -> None:
        self.attempts: dict[str, list[int]] = defaultdict(list)
        self._server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> TruncatingServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            fields = (line.partition(":") for line in head.split("\r\n")[1:] if line)
            headers = {name.strip().lower(): value.strip() for name, _, value in fields}
            await reader.readexactly(int(headers.get("content-length", "0")))
            key = headers.get("idempotency-key", "<none>")
            self.attempts[key].append(int(headers.get("x-delivery-count", "0")))
            whole = len(self.attempts[key]) > 1
            body = self.PROMISED if whole else self.PROMISED[: len(self.PROMISED) // 2]
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                + f"Content-Length: {len(self.PROMISED)}\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


async def test_dropped_connections_are_retried_and_succeed_on_the_second_attempt(
    make_topics: MakeTopics, start_worker: StartWorker, receiver: RecordingReceiver
) -> None:
    dropper, drop_prefix = _names("drop")
    truncated, cut_prefix = _names("cut")
    seen_keys: set[str] = set()

    def drop_first(request: RecordedRequest) -> Reply:
        key = request.header("Idempotency-Key") or ""
        first = key not in seen_keys
        seen_keys.add(key)
        return Reply(drop=True) if first else Reply(status=200, body=SUCCESS)

    receiver.route("/drop", drop_first)
    async with TruncatingServer() as cutter:
        topics = make_topics(partitions=4)
        await publish(
            topics.bootstrap,
            topics,
            [
                signed_settings(dropper, receiver.url("/drop")),
                signed_settings(truncated, cutter.url("/cut")),
            ],
        )
        worker = await start(start_worker, topics)
        inputs = [(dropper, f"{drop_prefix}-{n}", n) for n in range(10)]
        inputs += [(truncated, f"{cut_prefix}-{n}", n) for n in range(10)]
        await produce_events(
            topics.bootstrap,
            topics.catalog.input.name,
            [(order, return_event(tenant, order, seq)) for tenant, order, seq in inputs],
        )
        expected = {
            outcome_id(tenant, order, seq): (tenant, key_of(tenant, order, seq))
            for tenant, order, seq in inputs
        }
        async with TopicWatcher(topics.bootstrap, topics.catalog.events.name) as events:
            await events.wait_until(
                lambda values: set(expected) <= ids_seen(values),
                timeout=30.0,
                what="an order-event for every input",
            )
    outcomes = events_by_id(events.values)
    assert set(outcomes) == set(expected)
    for record_id_ in expected:
        outcome = outcomes[record_id_]
        assert (outcome["actionStatus"], outcome["attempts"], outcome["httpStatus"]) == (
            "Success",
            2,
            200,
        ), outcome
        assert outcome["errorReason"] is None
    dropped = by_key(receiver.requests_for("/drop"))
    assert set(dropped) == {key for tenant, key in expected.values() if tenant == dropper}
    for key, seen in dropped.items():
        assert [(r.attempt, r.status) for r in seen] == [(1, None), (2, 200)], key
    assert dict(cutter.attempts) == {
        key: [1, 2] for tenant, key in expected.values() if tenant == truncated
    }
    # What the worker saw on the first attempts: no answer at all, and a body cut short.
    log = worker.log_text()
    assert "ServerDisconnectedError" in log or "Server disconnected" in log
    assert "ClientPayloadError" in log
    assert worker.running
    assert_no_secrets(worker)
