"""Issue 14 on the real broker: no single record stops a partition or the worker.

One worker (`main`, web server on a free port) serves the module on its own topics, whose input
topic takes records up to 5 MB (`max.message.bytes` raised, as an operator would for a
compressing producer). It gets:

- a 760 KB value that is not JSON and a 3 MB value (over the 1 MiB record cap), each followed by
  a valid event on the same partition: both are dead-lettered cut to what the dead-letter topic
  takes, with their size and SHA-256, and the events behind them run;
- a webhook that answers with a patch larger than any record the producer sends: an Error
  order-event, and the next event of that partition runs;
- events dated 2099 and with a naive local time (UTC+2 written without its offset) under
  `runAfterOrderIsSaved`: processed about 1 s after an event without the step that arrived with
  them, not hours or decades later;
- the poison-record property test: hypothesis batches of records with hostile sizes,
  timestamps, keys and header sets; every record gets an order-event or a dead letter, and the
  oldest uncommitted event's age stays bounded.

A second worker (`bounded`) has a byte bound far below its traffic: intake pauses and resumes,
and every event still gets its outcome.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import RecordMetadata
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.core.identity import delivery_id, record_id
from streams.kafka.topic_admin import apply_topics
from streams.kafka.topics import REPO_TOPICS_FILE, TopicCatalog, dump_topics, load_topics
from streams.processes.ports import free_port
from tests.conftest import TestTopics
from tests.integration.conftest import StartWorker
from tests.integration.traffic import event_id, outcome_id, publish, settings_document
from tests.integration.worker_process import WorkerProcess
from tests.receiver import RecordingReceiver, Reply

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

SUFFIX = uuid.uuid4().hex[:6]
INPUT_MAX_MESSAGE_BYTES = 5 * 1024 * 1024
CLIENT_MAX_REQUEST = 6 * 1024 * 1024
PRODUCER_LIMIT = 1_000_000  # faust's producer_max_request_size: the dead-letter budget
#: Examples of the property test in the suite; `POISON_EXAMPLES=100` for a longer run.
POISON_EXAMPLES = int(os.environ.get("POISON_EXAMPLES", "4"))
#: The oldest uncommitted event may be this old at most (1 s wait + fetch hops + slack).
MAX_OLDEST_AGE_S = 15.0
SUCCESS = {"orderActionExecutionResults": [{"actionStatus": "Success"}]}
HUGE_PATCH_TAG = 1_020_000  # body ~1.02 MB: under the 1 MiB response cap, over the record limit


def tenant(name: str) -> str:
    return f"{name}-{SUFFIX}"


def order_id(name: str, seq: int = 1) -> str:
    return f"o-{name}-{seq}-{SUFFIX}"


def event(name: str, seq: int = 1, timestamp: Any = "2026-03-01T10:00:00Z", **order: Any) -> bytes:
    oid = order_id(name, seq)
    return orjson.dumps(
        {
            "eventId": event_id(oid, seq),
            "tenantId": tenant(name),
            "orderId": oid,
            "status": "Returned",
            "timestamp": timestamp,
            "order": {"id": oid, "seq": seq, **order},
        }
    )


def outcome_of(name: str, seq: int = 1) -> str:
    return outcome_id(tenant(name), order_id(name, seq), seq)


def saved_settings(name: str, url: str) -> dict:
    document = settings_document(tenant(name), url)
    document["returnWorkflow"][0]["runAfterOrderIsSaved"] = True
    return document


def make_topics(bootstrap: str, directory: Path) -> TestTopics:
    """The catalog's topics renamed for this module, the input's limit raised to 5 MB."""
    suffix = uuid.uuid4().hex[:8]
    base = load_topics(REPO_TOPICS_FILE)
    renamed = {}
    for role, spec in base.by_role().items():
        configs = dict(spec.configs)
        if role == "input":
            configs["max.message.bytes"] = str(INPUT_MAX_MESSAGE_BYTES)
        renamed[role] = spec.model_copy(
            update={
                "name": f"{spec.name}-{suffix}",
                "partitions": 1 if role == "settings" else 2,
                "replication_factor": 1,
                "configs": configs,
            }
        )
    catalog = TopicCatalog.model_validate(renamed)
    return TestTopics(
        catalog=catalog,
        path=dump_topics(catalog, directory / f"topics-{suffix}.yaml"),
        bootstrap=bootstrap,
    )


# --- producing and following the outputs ------------------------------------------------------

Headers = list[tuple[str, bytes]]


@dataclass(frozen=True)
class Input:
    label: str
    value: bytes
    key: bytes | None = None
    headers: Headers = field(default_factory=list)
    partition: int = 0
    outcome: str | None = None
    """The order-event id it must produce; None: it must be dead-lettered."""


async def produce(bootstrap: str, topic: str, inputs: Sequence[Input]) -> list[RecordMetadata]:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=False,
        max_request_size=CLIENT_MAX_REQUEST,
    )
    await producer.start()
    try:
        futures = [
            await producer.send(
                topic, value=i.value, key=i.key, headers=i.headers or None, partition=i.partition
            )
            for i in inputs
        ]
        return list(await asyncio.gather(*futures))
    finally:
        await producer.stop()


class Follower:
    """Reads the events and dead-letter topics from where it last stopped (one consumer)."""

    def __init__(self, topics: TestTopics) -> None:
        self.topics = topics
        self.events: dict[str, dict] = {}
        self.dead_letters: dict[tuple[int, int], dict] = {}
        self.event_seen_at: dict[str, float] = {}
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.topics.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=100,
            max_partition_fetch_bytes=CLIENT_MAX_REQUEST,
        )
        await self._consumer.start()
        catalog = self.topics.catalog
        self._consumer.assign(
            [
                TopicPartition(spec.name, p)
                for spec in (catalog.events, catalog.dead_letters)
                for p in range(spec.partitions)
            ]
        )

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()

    async def poll(self) -> None:
        assert self._consumer is not None
        batches = await self._consumer.getmany(timeout_ms=200)
        now = time.monotonic()
        for tp, records in batches.items():
            for record in records:
                value = orjson.loads(record.value)
                if tp.topic == self.topics.catalog.events.name:
                    self.events.setdefault(value["id"], value)
                    self.event_seen_at.setdefault(value["id"], now)
                else:
                    self.dead_letters.setdefault((value["partition"], value["offset"]), value)

    def missing(self, inputs: Sequence[Input], placed: Sequence[RecordMetadata]) -> list[str]:
        missing = []
        for item, meta in zip(inputs, placed, strict=True):
            done = (
                item.outcome in self.events
                if item.outcome is not None
                else (meta.partition, meta.offset) in self.dead_letters
            )
            if not done:
                missing.append(f"{item.label}@{meta.partition}:{meta.offset}")
        return missing

    async def wait_for(
        self,
        inputs: Sequence[Input],
        placed: Sequence[RecordMetadata],
        *,
        timeout: float = 60.0,
        stats_port: int | None = None,
    ) -> list[float]:
        """Until every input has its outcome; returns the oldest-unfinished ages sampled."""
        ages: list[float] = []
        started = time.monotonic()
        async with aiohttp.ClientSession() as session:
            while missing := self.missing(inputs, placed):
                if time.monotonic() - started > timeout:
                    raise AssertionError(f"no outcome after {timeout:g} s for {missing}")
                await self.poll()
                if stats_port is not None:
                    url = f"http://127.0.0.1:{stats_port}/returnhook/stats/"
                    async with session.get(url) as response:
                        ages.append((await response.json())["oldest_unfinished_age_s"])
        return ages


async def scrape(port: int, name: str) -> float:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/metrics") as response,
    ):
        text = await response.text()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


# --- the module's workers ---------------------------------------------------------------------


@dataclass
class Main:
    topics: TestTopics
    worker: WorkerProcess
    port: int
    receiver: RecordingReceiver
    follower: Follower


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def receiver() -> AsyncIterator[RecordingReceiver]:
    async with RecordingReceiver() as started:
        yield started


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def main(
    broker: str,
    tmp_path_factory: pytest.TempPathFactory,
    start_module_worker: StartWorker,
    receiver: RecordingReceiver,
) -> AsyncIterator[Main]:
    topics = make_topics(broker, tmp_path_factory.mktemp("poison"))
    await apply_topics(broker, topics.catalog)
    ok = Reply(status=200, body=SUCCESS)
    for path in ("/plain", "/saved", "/big", "/poison", "/poison-saved"):
        receiver.route(path, ok)
    huge = {**SUCCESS, "orderPatch": {"tags": ["x" * HUGE_PATCH_TAG]}}
    receiver.route("/huge", Reply(status=200, body=huge), ok)
    await publish(
        broker,
        topics,
        [
            settings_document(tenant("plain"), receiver.url("/plain")),
            settings_document(tenant("big"), receiver.url("/big")),
            settings_document(tenant("huge"), receiver.url("/huge")),
            saved_settings("saved", receiver.url("/saved")),
            settings_document(tenant("poison"), receiver.url("/poison")),
            saved_settings("poison-saved", receiver.url("/poison-saved")),
        ],
    )
    port = free_port()
    worker = start_module_worker(
        topics, web=True, extra_args=["--web-port", str(port)], ready_timeout=60.0
    )
    follower = Follower(topics)
    await follower.start()
    try:
        yield Main(topics=topics, worker=worker, port=port, receiver=receiver, follower=follower)
    finally:
        await follower.stop()


def assert_cut_dead_letter(letter: dict, value: bytes, reason: str, topic: str) -> None:
    assert letter["reason"] == reason
    assert letter["topic"] == topic
    assert letter["truncated"] == ["value"]
    assert letter["valueSize"] == len(value)
    assert letter["valueSha256"] == hashlib.sha256(value).hexdigest()
    kept = base64.b64decode(letter["value"])
    assert value.startswith(kept) and 0 < len(kept) < len(value)
    assert len(orjson.dumps(letter)) <= PRODUCER_LIMIT


# --- oversized records ------------------------------------------------------------------------


async def test_oversized_values_are_dead_lettered_cut_and_the_partition_goes_on(main: Main) -> None:
    invalid = b"{" + b"\xff" * (760_000 - 1)
    three_mb = event("big", 9, padding="p" * 3_000_000)
    inputs = [
        Input("invalid-760k", invalid, key=b"big-invalid"),
        Input("after-invalid", event("big", 1), outcome=outcome_of("big", 1)),
        Input("three-mb", three_mb, key=b"three-mb"),
        Input("after-three-mb", event("big", 2), outcome=outcome_of("big", 2)),
    ]
    placed = await produce(main.topics.bootstrap, main.topics.catalog.input.name, inputs)
    await main.follower.wait_for(inputs, placed)
    input_topic = main.topics.catalog.input.name
    letters = main.follower.dead_letters
    assert_cut_dead_letter(
        letters[(placed[0].partition, placed[0].offset)], invalid, "invalid_json", input_topic
    )
    big = letters[(placed[2].partition, placed[2].offset)]
    assert_cut_dead_letter(big, three_mb, "record_too_large", input_topic)
    assert big["key"] == "three-mb"
    # The ledger was started at the committed offsets (none yet: where the worker began).
    assert "input partitions start at their committed offsets" in main.worker.log_text()
    for seq in (1, 2):
        assert main.follower.events[outcome_of("big", seq)]["actionStatus"] == "Success"
    assert main.worker.running
    assert "stopping the worker" not in main.worker.log_text()


async def test_a_patch_over_the_record_limit_is_an_error_event_and_the_worker_stays_up(
    main: Main,
) -> None:
    inputs = [
        Input("huge", event("huge", 1), outcome=outcome_of("huge", 1), partition=1),
        Input("after-huge", event("huge", 2), outcome=outcome_of("huge", 2), partition=1),
    ]
    placed = await produce(main.topics.bootstrap, main.topics.catalog.input.name, inputs)
    await main.follower.wait_for(inputs, placed)
    first = main.follower.events[outcome_of("huge", 1)]
    assert (first["actionStatus"], first["httpStatus"]) == ("Error", 200)
    assert "order-patch record of" in first["errorReason"]
    assert f"over the {PRODUCER_LIMIT}-byte limit" in first["errorReason"]
    assert main.follower.events[outcome_of("huge", 2)]["actionStatus"] == "Success"
    assert len(main.receiver.requests_for("/huge")) == 2
    assert main.worker.running
    assert "stopping the worker" not in main.worker.log_text()


# --- timestamps under runAfterOrderIsSaved ----------------------------------------------------


async def test_future_and_naive_local_timestamps_wait_at_most_one_second(main: Main) -> None:
    local_plus_2 = (datetime.now(UTC) + timedelta(hours=2)).replace(tzinfo=None).isoformat()
    inputs = [
        Input("control", event("plain", 5), outcome=outcome_of("plain", 5)),
        Input("2099", event("saved", 1, "2099-01-01T00:00:00Z"), outcome=outcome_of("saved", 1)),
        Input("naive-local", event("saved", 2, local_plus_2), outcome=outcome_of("saved", 2)),
    ]
    before = await scrape(main.port, "returnhook_future_timestamps_total")
    placed = await produce(main.topics.bootstrap, main.topics.catalog.input.name, inputs)
    await main.follower.wait_for(inputs, placed, timeout=30)
    [control] = main.receiver.requests_for("/plain")[-1:]
    saved = {r.json()["Value"]["seq"]: r for r in main.receiver.requests_for("/saved")}
    # The three arrived in one fetch; the control's call is when the worker had them.
    for seq in (1, 2):
        delay = saved[seq].received_at - control.received_at
        assert delay < 2.0, f"seq {seq} called {delay:.2f} s after the control"
    assert await scrape(main.port, "returnhook_future_timestamps_total") - before == 2


# --- the poison-record property test ----------------------------------------------------------

MALFORMED = ("not a time", "2026-13-45T99:00:00Z")
HOSTILE_TIMESTAMPS = st.sampled_from(
    [
        "9999-12-31T23:59:59Z",
        "2099-01-01T00:00:00Z",
        "2099-01-01T00:00:00",  # naive, far future
        (datetime.now(UTC) + timedelta(hours=14)).replace(tzinfo=None).isoformat(),  # naive
        "2026-03-01T10:00:00+14:00",
        "1970-01-01T00:00:00Z",
        *MALFORMED,  # invalid_event
        12345678901234,
        None,
    ]
)
SIZES = st.sampled_from([0, 1, 100, 4096, 300_000, 760_000, 1_100_000])
HEADERS = st.lists(
    st.tuples(
        st.text(min_size=1, max_size=20),
        st.one_of(st.binary(max_size=64), st.builds(lambda n: b"\x80" * n, st.integers(0, 20_000))),
    ),
    max_size=12,
)
KEYS = st.one_of(
    st.none(), st.binary(max_size=32), st.builds(lambda n: b"k" * n, st.integers(0, 40_000))
)


@st.composite
def poison_batch(draw: st.DrawFn) -> list[Input]:
    inputs = []
    for index in range(draw(st.integers(1, 6))):
        label = f"p{uuid.uuid4().hex[:8]}-{index}"
        size = draw(SIZES)
        headers = draw(HEADERS)
        key = draw(KEYS)
        partition = draw(st.integers(0, 1))
        kind = draw(st.sampled_from(["event", "event", "bytes", "json-array"]))
        if kind == "event":
            name = draw(st.sampled_from(["poison", "poison-saved"]))
            timestamp = draw(HOSTILE_TIMESTAMPS)
            value = orjson.dumps(
                {
                    "eventId": label,
                    "tenantId": tenant(name),
                    "orderId": label,
                    "status": "Returned",
                    **({"timestamp": timestamp} if timestamp is not None else {}),
                    "order": {"id": label, "padding": "p" * size},
                }
            )
            # An event within the 1 MiB cap with a readable timestamp runs; otherwise it is a
            # dead letter (record_too_large or invalid_event).
            runs = timestamp not in MALFORMED and len(value) <= 1024 * 1024
            expected = record_id(delivery_id(tenant(name), label, 0), "event") if runs else None
            inputs.append(Input(label, value, key, headers, partition, expected))
        elif kind == "bytes":
            inputs.append(Input(label, b"\xfe" * size, key, headers, partition, None))
        else:
            inputs.append(Input(label, b"[" + b"1," * (size // 2) + b"1]", key, headers, partition))
    return inputs


@settings(
    max_examples=POISON_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=os.environ.get("POISON_SEED") is None and POISON_EXAMPLES <= 10,
)
@given(batch=poison_batch())
async def test_no_poison_record_crashes_or_stalls_the_worker(
    main: Main, batch: list[Input]
) -> None:
    placed = await produce(main.topics.bootstrap, main.topics.catalog.input.name, batch)
    ages = await main.follower.wait_for(batch, placed, timeout=90, stats_port=main.port)
    assert max(ages, default=0.0) < MAX_OLDEST_AGE_S, ages
    for item, meta in zip(batch, placed, strict=True):
        if item.outcome is None:
            letter = main.follower.dead_letters[(meta.partition, meta.offset)]
            assert letter["valueSize"] == len(item.value)
            assert letter["valueSha256"] == hashlib.sha256(item.value).hexdigest()
            assert len(orjson.dumps(letter)) <= PRODUCER_LIMIT
    assert main.worker.running
    assert "stopping the worker" not in main.worker.log_text()


# --- the byte bound ---------------------------------------------------------------------------

BOUND_BYTES = 40_000
BOUND_EVENTS = 40


async def test_with_a_low_byte_bound_intake_pauses_and_resumes_without_loss(
    broker: str,
    tmp_path_factory: pytest.TempPathFactory,
    start_module_worker: StartWorker,
    receiver: RecordingReceiver,
) -> None:
    topics = make_topics(broker, tmp_path_factory.mktemp("bounded"))
    await apply_topics(broker, topics.catalog)
    receiver.route("/slow", Reply(status=200, body=SUCCESS, delay=0.2))
    await publish(broker, topics, [settings_document(tenant("slow"), receiver.url("/slow"))])
    port = free_port()
    worker = start_module_worker(
        topics,
        web=True,
        extra_args=["--web-port", str(port)],
        env={"RETURNHOOK_MAX_UNCOMMITTED_BYTES": str(BOUND_BYTES)},
    )
    # 40 orders of about 10 KB on one partition: about 4 fit in the window at a time.
    inputs = [
        Input(f"slow-{seq}", event("slow", seq, pad="q" * 10_000), outcome=outcome_of("slow", seq))
        for seq in range(1, BOUND_EVENTS + 1)
    ]
    follower = Follower(topics)
    await follower.start()
    try:
        placed = await produce(broker, topics.catalog.input.name, inputs)
        sampled: list[float] = []

        async def sample_bytes() -> None:
            while True:
                sampled.append(await scrape(port, "returnhook_uncommitted_bytes"))
                await asyncio.sleep(0.05)

        sampler = asyncio.create_task(sample_bytes())
        try:
            await follower.wait_for(inputs, placed, timeout=60)
        finally:
            sampler.cancel()
    finally:
        await follower.stop()
    assert {outcome_of("slow", s) for s in range(1, BOUND_EVENTS + 1)} <= set(follower.events)
    assert len({r.json()["Value"]["seq"] for r in receiver.requests_for("/slow")}) == BOUND_EVENTS
    assert await scrape(port, "returnhook_intake_waits_total") > 0
    assert await scrape(port, "returnhook_uncommitted_bytes_limit") == BOUND_BYTES
    assert max(sampled) <= BOUND_BYTES, max(sampled)
    assert worker.running
