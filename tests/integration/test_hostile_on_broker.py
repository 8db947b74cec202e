"""Issue 7 end to end: hostile input, hostile endpoints, the egress policy and signing, on the
real broker with real worker processes and a real HTTP receiver.

Two workers serve the whole module (a start costs 3–5 s here), each on its own topics:

- `open`: the tests' usual loopback allowance, a small record cap (`RETURNHOOK_MAX_RECORD_BYTES`)
  and a small response cap (`RETURNHOOK_MAX_RESPONSE_BYTES`). It gets the hostile records, the
  hostile-response scenarios, the signed connector and the egress scenarios. Answers that the
  aiohttp receiver cannot give (an endless chunked body, a body that drips) come from a raw
  HTTP server in this module.
- `closed`: no loopback allowance at all (`RETURNHOOK_EGRESS_ALLOW` removed), and a User-Agent
  of its own so that anything it sent would be recognised at the receiver. It gets the same
  egress events as `open`, which must be refused there and succeed on `open`.

Both run at debug level with planted secrets (a bearer token and two signing secrets, one from
the environment and one written into the settings), and neither log may contain them.
"""

from __future__ import annotations

import asyncio
import base64
import os
import random
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer
from aiokafka.structs import RecordMetadata
from standardwebhooks import Webhook, WebhookVerificationError

from streams.core.identity import delivery_id
from tests.conftest import TestTopics
from tests.integration.conftest import ModuleTopics, StartWorker
from tests.integration.traffic import (
    STEP,
    event_id,
    outcome_id,
    publish,
    return_event,
    settings_document,
)
from tests.integration.worker_process import WorkerProcess
from tests.kafka_helpers import produce as produce_records
from tests.kafka_helpers import read_topic
from tests.receiver import RecordedRequest, RecordingReceiver, Reply

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

SUFFIX = uuid.uuid4().hex[:6]
MAX_RECORD_BYTES = 4096
MAX_RESPONSE_BYTES = 2048
CLOSED_USER_AGENT = f"returnhook-closed-{SUFFIX}"

# Planted secrets: distinctive, so that a hit in a log can only be a leak.
BEARER_TOKEN = f"tok-{uuid.uuid4().hex}-Hz"
# SIGNING_SECRET comes from ${shared:SIGNING_SECRET}; OLD_SIGNING_SECRET is written inline
SIGNING_SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()
OLD_SIGNING_SECRET = "whsec_" + base64.b64encode(os.urandom(24)).decode()  # inline, rotating out
SECRET_ENV = {  # shared by the operator with every tenant of this module
    "RETURNHOOK_SHARED_SECRET_ERP_TOKEN": BEARER_TOKEN,
    "RETURNHOOK_SHARED_SECRET_SIGNING_SECRET": SIGNING_SECRET,
}
PLANTED = (
    BEARER_TOKEN,
    SIGNING_SECRET,
    SIGNING_SECRET.removeprefix("whsec_"),
    OLD_SIGNING_SECRET,
    OLD_SIGNING_SECRET.removeprefix("whsec_"),
)

SUCCESS = {"orderActionExecutionResults": [{"actionStatus": "Success"}]}
HOSTILE_PARTITION = 0


def tenant(name: str) -> str:
    return f"{name}-{SUFFIX}"


def order_id(name: str) -> str:
    return f"o-{name}-{SUFFIX}"


def valid_event(name: str) -> bytes:
    return return_event(tenant(name), order_id(name), 1)


def outcome_of(name: str) -> str:
    return outcome_id(tenant(name), order_id(name), 1)


def key_of(name: str) -> str:
    """The Idempotency-Key (and webhook-id) of the scenario's one delivery."""
    return delivery_id(tenant(name), event_id(order_id(name), 1), 0)


# --- the scenarios -----------------------------------------------------------------------------

EGRESS = ("egress-ip", "egress-name")
# Other spellings of loopback, tried on the closed worker only: each must be refused too.
LOOPBACK_SPELLINGS = {
    "egress-zero": "0.0.0.0",  # connects to this host on Linux
    "egress-v6": "[::1]",
    "egress-mapped": "[::ffff:127.0.0.1]",
}
# Forms that getaddrinfo would turn into 127.0.0.1. `settings publish` refuses them (issue 17), so
# they are written past it, onto the settings topic; the worker refuses them when it builds the
# request: nothing is called, and the step fails at once (Error, not sent).
NON_CANONICAL_IPV4 = {"egress-short": "127.1", "egress-decimal": "2130706433"}
RESPONSES = ("big-body", "redirect", "invalid-json", "wrong-shape")
RAW = ("endless", "drip")
DRIP_TIMEOUT_MS = 500  # the drip tenant's connector timeout: the whole attempt, body included
ENDLESS_LIMIT = 64 * 1024 * 1024  # what the endless body would send if nobody stopped reading


class RawServer:
    """HTTP/1.1 by hand, for answers aiohttp's server will not give.

    - `/endless`: 200, chunked, no Content-Length, 64 KiB chunks until ENDLESS_LIMIT or until
      the client goes away; `sent` records how far it got per request.
    - `/drip`: 200 with a Content-Length of 1 000 bytes, one byte every 50 ms (50 s in all).
    """

    def __init__(self) -> None:
        self.requests: list[tuple[str, int]] = []  # (path, X-Delivery-Count)
        self.sent: dict[str, list[int]] = {"/endless": [], "/drip": []}
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self.port = 0

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self._handlers:
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        sent = 0
        path = ""
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            request_line, *lines = head.split("\r\n")
            path = request_line.split(" ")[1]
            fields = (line.partition(":") for line in lines if line)
            headers = {name.strip().lower(): value.strip() for name, _, value in fields}
            await reader.readexactly(int(headers.get("content-length", "0")))
            self.requests.append((path, int(headers.get("x-delivery-count", "0"))))
            if path == "/endless":
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                )
                chunk = b"%x\r\n%s\r\n" % (64 * 1024, b" " * 64 * 1024)
                while sent < ENDLESS_LIMIT:
                    writer.write(chunk)
                    await writer.drain()
                    sent += 64 * 1024
            elif path == "/drip":
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Content-Length: 1000\r\nConnection: close\r\n\r\n"
                )
                while sent < 1000:
                    writer.write(b" ")
                    await writer.drain()
                    sent += 1
                    await asyncio.sleep(0.05)
            else:
                writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError, IndexError):
            pass
        finally:
            if path in self.sent:
                self.sent[path].append(sent)
            writer.close()
            self._handlers.discard(task)


def all_settings(receiver: RecordingReceiver, raw: RawServer) -> list[dict]:
    port = receiver.port
    documents = [
        settings_document(tenant("egress-ip"), f"http://127.0.0.1:{port}/egress-ip"),
        settings_document(tenant("egress-name"), f"http://localhost:{port}/egress-name"),
        *(settings_document(tenant(name), receiver.url(f"/{name}")) for name in RESPONSES),
        settings_document(tenant("after"), receiver.url("/after")),
        settings_document(tenant("odd-key"), receiver.url("/odd-key")),
        settings_document(tenant("endless"), raw.url("/endless")),
        {
            "tenantId": tenant("drip"),
            "connectors": [
                {"name": "Webhook", "host": raw.url("/drip"), "timeout": DRIP_TIMEOUT_MS}
            ],
            "returnWorkflow": [{"name": STEP, "active": True, "connector": "Webhook"}],
        },
        {
            "tenantId": tenant("signed"),
            "connectors": [
                {
                    "name": "Webhook",
                    "connectorId": "erp",
                    "host": receiver.url("/signed"),
                    "bearerToken": "${shared:ERP_TOKEN}",
                    "signingSecrets": ["${shared:SIGNING_SECRET}", OLD_SIGNING_SECRET],
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
        },
    ]
    documents += [
        settings_document(tenant(name), f"http://{host}:{port}/{name}")
        for name, host in {**LOOPBACK_SPELLINGS, **NON_CANONICAL_IPV4}.items()
    ]
    # The token also travels with the egress scenarios: a refusal must not leak it either.
    for document in documents:
        if document["tenantId"].startswith("egress-"):
            document["connectors"] = [{"name": "Webhook", "bearerToken": "${shared:ERP_TOKEN}"}]
    return documents


def script_routes(receiver: RecordingReceiver) -> None:
    ok = Reply(status=200, body=SUCCESS)
    for name in (*EGRESS, "after", "odd-key", "redirect-target"):
        receiver.route(f"/{name}", ok)
    padding = "x" * (MAX_RESPONSE_BYTES + 100)
    receiver.route("/big-body", Reply(status=200, body={**SUCCESS, "padding": padding}))
    receiver.route(
        "/redirect", Reply(status=302, headers={"Location": receiver.url("/redirect-target")})
    )
    receiver.route("/invalid-json", Reply(status=200, body=b'{"orderActionExecutionResults": ['))
    receiver.route(
        "/wrong-shape",
        Reply(status=200, body={"orderActionExecutionResults": [{"cancelWorkflow": "maybe"}]}),
    )
    # Two attempts, so two signatures with different timestamps get checked.
    receiver.route("/signed", Reply(status=503), ok)


Headers = list[tuple[str, bytes]]


@dataclass(frozen=True)
class Hostile:
    label: str
    reason: str
    value: bytes
    key: bytes | None = None
    headers: Headers = field(default_factory=list)


def hostile_records() -> list[Hostile]:
    rng = random.Random(7)
    noise = b"\xff" + bytes(rng.randrange(256) for _ in range(299))
    too_large = orjson.loads(valid_event("too-large"))
    too_large["order"]["padding"] = "y" * MAX_RECORD_BYTES  # valid but for its size
    no_tenant = orjson.loads(valid_event("no-tenant"))
    del no_tenant["tenantId"]
    wrong_shape = orjson.loads(valid_event("bad-order"))
    wrong_shape["order"] = ["not", "an", "object"]
    unknown = return_event(f"nobody-{SUFFIX}", order_id("unknown"), 1)
    return [
        Hostile("random-bytes", "invalid_json", noise, key=b"noise"),
        Hostile("json-array", "not_an_object", b'[{"tenantId": "x"}]', key=b"array"),
        Hostile("json-string", "not_an_object", b'"Returned"'),
        Hostile("empty", "empty_value", b"", key=b"empty"),
        Hostile("too-large", "record_too_large", orjson.dumps(too_large), key=b"big"),
        Hostile("no-tenant", "invalid_event", orjson.dumps(no_tenant), key=b"no-tenant"),
        Hostile("order-not-object", "invalid_event", orjson.dumps(wrong_shape), key=b"bad-order"),
        Hostile("unknown-tenant", "unknown_tenant", unknown, key=order_id("unknown").encode()),
        Hostile(
            "binary-key-and-headers",
            "invalid_json",
            b'{"tenantId": "x", "status": "Returned", "order": ',
            key=b"\xff\xfe\x00key\x80",
            headers=[("trace", b"\xc3\x28\xa0\xa1"), ("plain", b"ok"), ("empty", b"")],
        ),
    ]


# --- the module's run --------------------------------------------------------------------------


@dataclass
class Run:
    topics: TestTopics
    worker: WorkerProcess
    inputs: dict[str, RecordMetadata] = field(default_factory=dict)
    events: list[dict] = field(default_factory=list)
    dead_letters: list[dict] = field(default_factory=list)

    def event(self, name: str) -> dict:
        [found] = [e for e in self.events if e["id"] == outcome_of(name)]
        return found


@dataclass
class Module:
    receiver: RecordingReceiver
    raw: RawServer
    open: Run
    closed: Run

    def requests(self, path: str) -> list[RecordedRequest]:
        return self.receiver.requests_for(path)


async def produce(
    bootstrap: str, topic: str, records: Sequence[tuple[str, bytes | None, bytes, Headers]]
) -> dict[str, RecordMetadata]:
    """(label, key, value, headers) in order, all to HOSTILE_PARTITION; where each one went."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False)
    await producer.start()
    try:
        futures = [
            await producer.send(
                topic, key=key, value=value, headers=headers or None, partition=HOSTILE_PARTITION
            )
            for _, key, value, headers in records
        ]
        sent = await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return {label: meta for (label, *_), meta in zip(records, sent, strict=True)}


async def read_json(bootstrap: str, topic: str, min_count: int) -> list[dict]:
    records = await read_topic(bootstrap, topic, min_count=min_count, timeout=40, idle=1.5)
    return [orjson.loads(r.value) for r in records]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_receiver() -> AsyncIterator[RecordingReceiver]:
    async with RecordingReceiver() as started:
        yield started


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def raw_server() -> AsyncIterator[RawServer]:
    async with RawServer() as started:
        yield started


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def module(
    module_topics: ModuleTopics,
    start_module_worker: StartWorker,
    shared_receiver: RecordingReceiver,
    raw_server: RawServer,
) -> Module:
    receiver = shared_receiver
    script_routes(receiver)
    open_topics, closed_topics = module_topics(partitions=2), module_topics(partitions=2)
    settings = all_settings(receiver, raw_server)
    past_publish = {tenant(name) for name in NON_CANONICAL_IPV4}
    for topics in (open_topics, closed_topics):
        await publish(
            topics.bootstrap, topics, [d for d in settings if d["tenantId"] not in past_publish]
        )
        await produce_records(
            topics.bootstrap,
            topics.catalog.settings.name,
            [
                (d["tenantId"].encode(), orjson.dumps(d))
                for d in settings
                if d["tenantId"] in past_publish
            ],
        )
    open_worker = start_module_worker(
        open_topics,
        wait=False,
        log_level="debug",
        env={
            **SECRET_ENV,
            "RETURNHOOK_MAX_RECORD_BYTES": str(MAX_RECORD_BYTES),
            "RETURNHOOK_MAX_RESPONSE_BYTES": str(MAX_RESPONSE_BYTES),
        },
    )
    closed_worker = start_module_worker(
        closed_topics,
        wait=False,
        log_level="debug",
        env={
            **SECRET_ENV,
            "RETURNHOOK_EGRESS_ALLOW": None,
            "RETURNHOOK_USER_AGENT": CLOSED_USER_AGENT,
        },
    )
    await asyncio.gather(
        asyncio.to_thread(open_worker.wait_ready, 60.0),
        asyncio.to_thread(closed_worker.wait_ready, 60.0),
    )
    run = Module(
        receiver=receiver,
        raw=raw_server,
        open=Run(topics=open_topics, worker=open_worker),
        closed=Run(topics=closed_topics, worker=closed_worker),
    )

    def valid(name: str, key: bytes | None = None, headers: Headers | None = None) -> tuple:
        return (name, key or order_id(name).encode(), valid_event(name), headers or [])

    hostile = [(h.label, h.key, h.value, h.headers) for h in hostile_records()]
    odd_key = valid("odd-key", b"\x80\x81odd", [("trace", b"\xff\xfe")])
    open_inputs = [
        *(valid(name) for name in EGRESS),
        *hostile,
        odd_key,
        valid("after"),  # behind every hostile record on the same partition
        *(valid(name) for name in (*RESPONSES, *RAW, "signed")),
    ]
    closed_inputs = [valid(name) for name in (*EGRESS, *LOOPBACK_SPELLINGS, *NON_CANONICAL_IPV4)]
    run.open.inputs, run.closed.inputs = await asyncio.gather(
        produce(open_topics.bootstrap, open_topics.catalog.input.name, open_inputs),
        produce(closed_topics.bootstrap, closed_topics.catalog.input.name, closed_inputs),
    )
    assert len(run.open.inputs) == len(open_inputs), "input labels must be unique"
    expected_events = len(open_inputs) - len(hostile)
    catalog = open_topics.catalog
    run.open.events, run.open.dead_letters, run.closed.events = await asyncio.gather(
        read_json(open_topics.bootstrap, catalog.events.name, expected_events),
        read_json(open_topics.bootstrap, catalog.dead_letters.name, len(hostile)),
        read_json(closed_topics.bootstrap, closed_topics.catalog.events.name, len(closed_inputs)),
    )
    # The closed worker has an event for every input by now; a dead letter of any of them would
    # be on its topic already (a worker dead-letters instead of, or before, the outcome).
    run.closed.dead_letters = await read_json(
        closed_topics.bootstrap, closed_topics.catalog.dead_letters.name, 0
    )
    return run


def assert_no_secrets(worker: WorkerProcess) -> None:
    log = worker.log_text()
    assert "webhook attempt" in log or "egress" in log, "the worker logged none of its work"
    for secret in PLANTED:
        assert secret not in log, f"a planted secret is in the worker log {worker.log_path}"


# --- the egress policy ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", EGRESS)
async def test_loopback_targets_are_refused_without_an_allowance(module: Module, name: str) -> None:
    event = module.closed.event(name)
    assert (event["actionStatus"], event["attempts"], event["httpStatus"]) == (
        "Warning",
        1,
        None,
    ), event
    reason = event["errorReason"]
    assert "egress policy" in reason and "loopback" in reason and "not retried" in reason
    assert ("localhost" if name == "egress-name" else "127.0.0.1") in reason
    # The closed worker's requests would carry its own User-Agent: none arrived, anywhere.
    assert not [r for r in module.receiver.requests if r.header("User-Agent") == CLOSED_USER_AGENT]
    # Refused is an outcome (the Warning above), not unreadable input: nothing dead-lettered.
    assert module.closed.dead_letters == [], module.closed.dead_letters
    assert module.closed.worker.running


@pytest.mark.parametrize("name", list(LOOPBACK_SPELLINGS))
async def test_other_spellings_of_loopback_are_refused_too(module: Module, name: str) -> None:
    event = module.closed.event(name)
    assert (event["actionStatus"], event["attempts"], event["httpStatus"]) == (
        "Warning",
        1,
        None,
    ), event
    assert "egress policy" in event["errorReason"] and "not retried" in event["errorReason"]
    assert module.requests(f"/{name}") == []
    assert not [r for r in module.receiver.requests if r.header("User-Agent") == CLOSED_USER_AGENT]


@pytest.mark.parametrize("name", list(NON_CANONICAL_IPV4))
async def test_non_canonical_ipv4_loopback_reaches_nothing(module: Module, name: str) -> None:
    event = module.closed.event(name)
    assert (event["actionStatus"], event["httpStatus"]) == ("Error", None), event
    assert "reads as an IPv4 address but is not written as one" in event["errorReason"]
    assert module.requests(f"/{name}") == []
    assert not [r for r in module.receiver.requests if r.header("User-Agent") == CLOSED_USER_AGENT]


@pytest.mark.parametrize("name", list(NON_CANONICAL_IPV4))
async def test_a_url_the_client_cannot_use_is_not_retried(module: Module, name: str) -> None:
    assert module.closed.event(name)["attempts"] == 0


@pytest.mark.parametrize("name", EGRESS)
async def test_the_same_targets_succeed_with_the_allowance(module: Module, name: str) -> None:
    event = module.open.event(name)
    assert (event["actionStatus"], event["attempts"], event["httpStatus"]) == ("Success", 1, 200)
    [request] = module.requests(f"/{name}")
    assert request.header("Idempotency-Key") == key_of(name)
    assert request.header("Authorization") == f"Bearer {BEARER_TOKEN}"


# --- hostile input -------------------------------------------------------------------------------


async def test_every_hostile_record_is_dead_lettered_whole_with_its_reason(module: Module) -> None:
    run = module.open
    topic = run.topics.catalog.input.name
    letters = {(d["partition"], d["offset"]): d for d in run.dead_letters}
    assert len(letters) == len(run.dead_letters) == len(hostile_records()), run.dead_letters
    for hostile in hostile_records():
        where = run.inputs[hostile.label]
        letter = letters[(where.partition, where.offset)]
        assert letter["topic"] == topic
        assert letter["reason"] == hostile.reason, (hostile.label, letter)
        assert letter["error"], hostile.label
        assert base64.b64decode(letter["value"], validate=True) == hostile.value, hostile.label
        if hostile.key is None:
            assert letter["key"] is None
        elif hostile.label != "binary-key-and-headers":
            assert letter["key"] == hostile.key.decode()
        if hostile.label != "binary-key-and-headers":
            assert letter["headers"] == {}

    def letter_of(label: str) -> dict:
        where = run.inputs[label]
        return letters[(where.partition, where.offset)]

    errors = {h.label: letter_of(h.label)["error"] for h in hostile_records()}
    assert "not JSON" in errors["random-bytes"]
    assert "list" in errors["json-array"] and "str" in errors["json-string"]
    assert f"over the {MAX_RECORD_BYTES}-byte cap" in errors["too-large"]
    assert "tenantId" in errors["no-tenant"]
    assert errors["order-not-object"].startswith("order")  # the field path leads
    assert f"nobody-{SUFFIX}" in errors["unknown-tenant"]


async def test_non_utf8_keys_and_headers_survive_as_base64(module: Module) -> None:
    run = module.open
    where = run.inputs["binary-key-and-headers"]
    [letter] = [
        d
        for d in run.dead_letters
        if (d["partition"], d["offset"]) == (where.partition, where.offset)
    ]
    assert letter["reason"] == "invalid_json"
    assert letter["key"] == "base64:" + base64.b64encode(b"\xff\xfe\x00key\x80").decode()
    assert letter["headers"] == {
        "trace": "base64:" + base64.b64encode(b"\xc3\x28\xa0\xa1").decode(),
        "plain": "ok",
        "empty": "",
    }


async def test_the_worker_goes_on_behind_hostile_records(module: Module) -> None:
    run = module.open
    after = run.inputs["after"]
    assert after.partition == HOSTILE_PARTITION
    for hostile in hostile_records():
        assert run.inputs[hostile.label].offset < after.offset
    for name in ("after", "odd-key"):  # a valid event with a non-UTF-8 key is just an event
        event = run.event(name)
        assert (event["actionStatus"], event["attempts"], event["httpStatus"]) == (
            "Success",
            1,
            200,
        )
        assert len(module.requests(f"/{name}")) == 1
    assert run.worker.running
    assert "stopping the worker" not in run.worker.log_text()


# --- hostile responses ---------------------------------------------------------------------------


async def test_a_body_over_the_cap_is_a_failure_and_not_retried(module: Module) -> None:
    event = module.open.event("big-body")
    assert (event["actionStatus"], event["attempts"], event["httpStatus"]) == ("Warning", 1, 200)
    assert f"larger than {MAX_RESPONSE_BYTES} bytes" in event["errorReason"]
    assert [r.attempt for r in module.requests("/big-body")] == [1]


async def test_an_endless_chunked_body_is_cut_at_the_cap(module: Module) -> None:
    event = module.open.event("endless")
    assert (event["actionStatus"], event["attempts"], event["httpStatus"]) == ("Warning", 1, 200)
    assert f"larger than {MAX_RESPONSE_BYTES} bytes" in event["errorReason"]
    assert module.raw.requests.count(("/endless", 1)) == 1
    # The worker stopped reading and hung up: the server never got to send it all.
    [sent] = module.raw.sent["/endless"]
    assert sent < ENDLESS_LIMIT // 4, sent


async def test_a_dripping_body_is_bounded_by_the_total_timeout(module: Module) -> None:
    event = module.open.event("drip")
    assert (event["actionStatus"], event["attempts"], event["httpStatus"]) == (
        "Warning",
        4,
        None,
    ), event
    assert f"no answer within {DRIP_TIMEOUT_MS / 1000:g} s" in event["errorReason"]
    assert [n for path, n in module.raw.requests if path == "/drip"] == [1, 2, 3, 4]
    # Bytes kept coming, yet every attempt ended at the timeout: four of them plus the retry
    # delays (0.2 + 0.4 + 0.6 s), not the 50 s the whole body would take.
    assert all(0 < sent < 1000 for sent in module.raw.sent["/drip"]), module.raw.sent["/drip"]
    bound = 4 * DRIP_TIMEOUT_MS + 1200
    assert bound - 100 <= event["durationMs"] < bound + 2500, event["durationMs"]


async def test_a_redirect_is_not_followed_and_retried_as_a_non_success(module: Module) -> None:
    event = module.open.event("redirect")
    assert (event["actionStatus"], event["attempts"], event["httpStatus"]) == ("Warning", 4, 302)
    assert event["errorReason"] == "the webhook answered HTTP 302 on attempt 4 of 4; giving up"
    assert [(r.attempt, r.status) for r in module.requests("/redirect")] == [
        (n, 302) for n in (1, 2, 3, 4)
    ]
    assert module.requests("/redirect-target") == []


async def test_invalid_json_is_a_failure_with_the_reason(module: Module) -> None:
    event = module.open.event("invalid-json")
    assert (event["actionStatus"], event["attempts"], event["httpStatus"]) == ("Warning", 1, 200)
    assert "not JSON" in event["errorReason"]
    assert "orderActionExecutionResults" in event["errorReason"]  # a preview of what came


async def test_a_wrong_shape_is_a_failure_naming_the_field(module: Module) -> None:
    event = module.open.event("wrong-shape")
    assert (event["actionStatus"], event["attempts"], event["httpStatus"]) == ("Warning", 1, 200)
    reason = event["errorReason"]
    assert "not an OmniumOrderWorkflowExecutionPatchResult" in reason
    assert "orderActionExecutionResults.0.cancelWorkflow" in reason


# --- signing -------------------------------------------------------------------------------------


async def test_signed_requests_verify_with_an_independent_implementation(module: Module) -> None:
    event = module.open.event("signed")
    assert (event["actionStatus"], event["attempts"], event["httpStatus"]) == ("Success", 2, 200)
    requests = module.requests("/signed")
    assert [(r.attempt, r.status) for r in requests] == [(1, 503), (2, 200)]
    for request in requests:
        headers: dict[str, Any] = request.headers
        assert request.header("webhook-id") == key_of("signed") == request.header("Idempotency-Key")
        assert len((request.header("webhook-signature") or "").split(" ")) == 2
        for secret in (SIGNING_SECRET, OLD_SIGNING_SECRET):  # either side of a rotation
            Webhook(secret).verify(request.body, headers)
        other = "whsec_" + base64.b64encode(os.urandom(24)).decode()
        with pytest.raises(WebhookVerificationError, match="No matching signature"):
            Webhook(other).verify(request.body, headers)
        with pytest.raises(WebhookVerificationError, match="No matching signature"):
            Webhook(SIGNING_SECRET).verify(request.body + b" ", headers)
        assert request.header("Authorization") == f"Bearer {BEARER_TOKEN}"


# --- secrets -------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["open", "closed"])
async def test_planted_secrets_never_reach_the_worker_log(module: Module, which: str) -> None:
    run: Run = getattr(module, which)
    assert_no_secrets(run.worker)
    if which == "closed":
        assert "egress policy" in run.worker.log_text()  # it did log the refusals
