"""SPEC §6 end to end: a real worker subprocess, the real broker, a real HTTP receiver.

One worker serves the whole module (a start costs 3–5 s on the test broker). Every scenario has
its own tenant, webhook path and order ids, so scenarios run side by side and each test filters
the shared output topics by its order ids. The `batch` fixture publishes every tenant's settings,
starts the worker, produces all the scenario inputs at once and reads what came out; the tests
then check their part of it exactly: which records, and what is in them. The settings update
needs its own sequence on the same worker and runs on its own.

The worker runs at `--log-level debug` with planted secrets, so the secrets test can check the
whole log of a worker that handled every scenario.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import socket
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer
from aiokafka.structs import RecordMetadata

from models.secret_reference import secret_env_name
from models.settings import TenantSettings
from streams.core.identity import delivery_id, record_id
from streams.kafka.settings_file import publish_settings
from tests.conftest import TestTopics
from tests.integration.conftest import ModuleTopics, StartWorker
from tests.integration.worker_process import WorkerProcess
from tests.kafka_helpers import read_topic
from tests.receiver import RecordedRequest, RecordingReceiver, Reply

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

STEP = "WebhookReturnWorkflowStep"
TIMESTAMP = "2026-03-01T10:00:00Z"  # every input's timestamp: createdAt and `occurred` follow it
RETURN_FORM = "RMA-2"
SUFFIX = uuid.uuid4().hex[:6]
# Planted secrets: distinctive, so a hit in the log can only be a leak.
BEARER_TOKEN = f"tok-{uuid.uuid4().hex}-Zq"
BASIC_PASSWORD = f"pw-{uuid.uuid4().hex}-Xk"
BASIC_USER = "erp-user"

Headers = list[tuple[str, bytes]]


# --- building inputs and settings ------------------------------------------------------------


def tenant(name: str) -> str:
    return f"{name}-{SUFFIX}"


def order_id(name: str, n: int = 1) -> str:
    return f"o-{name}-{n}-{SUFFIX}"


def make_order(oid: str, *, market: str = "NOR", errors: list[dict] | None = None) -> dict:
    """An OmniumOrder with fields the step does not read, to check they travel unchanged."""
    return {
        "id": oid,
        "status": "Returned",
        "marketId": market,
        "storeId": "store-1",
        "orderType": "Online",
        "tags": ["vip"],
        "properties": [{"key": "Channel", "value": "web", "keyGroup": None}],
        "errors": errors if errors is not None else [],
        "returnOrderForms": [{"returnId": "RMA-1"}, {"returnId": RETURN_FORM}],
        "lines": [{"lineItemId": "1", "sku": "A-1", "quantity": 2}],
        "customFieldNobodyKnows": {"nested": [1, 2, 3]},
    }


def make_event(
    tenant_id: str | None,
    order: dict,
    *,
    status: str = "Returned",
    event_id: str | None = "auto",
) -> dict:
    document: dict[str, Any] = {
        "tenantId": tenant_id,
        "orderId": order["id"],
        "status": status,
        "previousStatus": "Completed",
        "timestamp": TIMESTAMP,
        "order": order,
    }
    if tenant_id is None:
        del document["tenantId"]
    if event_id == "auto":
        document["eventId"] = f"ev-{order['id']}-{status}"
    elif event_id is not None:
        document["eventId"] = event_id
    return document


def step(
    host: str | None = None,
    *,
    stop_on_error: bool = False,
    error_status: str | None = None,
    connector_id: str | None = None,
    **extra: Any,
) -> dict:
    properties: list[dict] = []
    if host is not None:
        properties.append({"key": "Host", "value": host})
    if error_status is not None:
        properties.append({"key": "ErrorStatus", "value": error_status})
    document: dict[str, Any] = {
        "name": STEP,
        "active": True,
        "connector": "Webhook",
        "stopOnError": stop_on_error,
        "translateKey": "WorkflowStep_WebhookReturnWorkflowStep",
        "properties": properties,
        **extra,
    }
    if connector_id is not None:
        document["connectorId"] = connector_id
    return document


# --- what the worker must write ----------------------------------------------------------------


def delivery_key(tenant_id: str, event_id: str, index: int) -> str:
    return delivery_id(tenant_id, event_id, index)


def entry_fields(reference_id: str, severity: str) -> dict:
    """An error entry as the worker writes it, but for its texts (message, details)."""
    return {
        "key": STEP,
        "referenceId": reference_id,
        "severity": severity,
        "status": "New",
        "occurred": TIMESTAMP,
    }


def expected_event(
    tenant_id: str,
    oid: str,
    event_id: str,
    index: int,
    *,
    action_status: str,
    attempts: int,
    http_status: int | None,
    continue_workflow: bool = True,
    cancel_workflow: bool = False,
    error_reason: str | None = None,
    skipped_steps: Sequence[int] = (),
    connector_id: str | None = None,
) -> dict:
    key = delivery_key(tenant_id, event_id, index)
    return {
        "id": record_id(key, "event"),
        "tenantId": tenant_id,
        "orderId": oid,
        "sourceEventId": event_id,
        "category": "Exported",
        "step": {"index": index, "name": STEP, "connectorId": connector_id},
        "actionStatus": action_status,
        "errorReason": error_reason,
        "cancelWorkflow": cancel_workflow,
        "continueWorkflow": continue_workflow,
        "skippedSteps": list(skipped_steps),
        "attempts": attempts,
        "httpStatus": http_status,
        "createdAt": TIMESTAMP,
    }


def expected_patch(
    tenant_id: str,
    oid: str,
    event_id: str,
    index: int,
    patch: dict,
    *,
    ignored: Sequence[str] = (),
    connector_id: str | None = None,
) -> dict:
    key = delivery_key(tenant_id, event_id, index)
    return {
        "id": record_id(key, "patch"),
        "tenantId": tenant_id,
        "orderId": oid,
        "sourceEventId": event_id,
        "step": {"index": index, "name": STEP, "connectorId": connector_id},
        "patch": patch,
        "ignoredFields": list(ignored),
        "createdAt": TIMESTAMP,
    }


def assert_records(actual: list[dict], expected: list[dict]) -> None:
    """Exactly these records, in this order; each expected field checked, durations sane."""
    assert len(actual) == len(expected), orjson.dumps(actual, option=orjson.OPT_INDENT_2).decode()
    for got, want in zip(actual, expected, strict=True):
        assert {k: got.get(k, "<missing>") for k in want} == want
        if "durationMs" in got:
            assert isinstance(got["durationMs"], int) and got["durationMs"] >= 0


def split_entry(entry: dict) -> tuple[dict, str, str | None]:
    """(the entry without message/details, message, details) for entries with varying text."""
    rest = {k: v for k, v in entry.items() if k not in {"message", "details"}}
    return rest, entry["message"], entry.get("details")


# --- the module's run --------------------------------------------------------------------------


@dataclass
class Batch:
    topics: TestTopics
    receiver: RecordingReceiver
    worker: WorkerProcess
    closed_port: int
    inputs: dict[str, RecordMetadata] = field(default_factory=dict)  # label -> where it went
    patches: list[dict] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)
    dead_letters: list[dict] = field(default_factory=list)

    def patches_for(self, oid: str) -> list[dict]:
        return [p for p in self.patches if p["orderId"] == oid]

    def events_for(self, oid: str) -> list[dict]:
        return [e for e in self.events if e["orderId"] == oid]

    def requests(self, path: str) -> list[RecordedRequest]:
        return self.receiver.requests_for(path)

    def url(self, path: str) -> str:
        return self.receiver.url(path)


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def all_settings(receiver: RecordingReceiver, refused_port: int) -> list[dict]:
    url = receiver.url
    return [
        {
            "tenantId": tenant("success"),
            "returnWorkflow": [
                step(
                    url("/success"),
                    properties=[
                        {"key": "Host", "value": url("/success")},
                        {"key": "X-Source", "value": "oms", "keyGroup": "RequestHeaders"},
                    ],
                )
            ],
        },
        {"tenantId": tenant("empty"), "returnWorkflow": [step(url("/empty"))]},
        {"tenantId": tenant("warning"), "returnWorkflow": [step(url("/warning"))]},
        {
            # Option B: the host comes from the connector the step names.
            "tenantId": tenant("cancel-stop"),
            "connectors": [
                {"name": "Webhook", "connectorId": "erp", "host": url("/cancel-stop")},
            ],
            "returnWorkflow": [
                step(stop_on_error=True, error_status="ReturnFailed", connector_id="erp"),
                step(url("/cancel-stop/next")),
            ],
        },
        {
            "tenantId": tenant("cancel-continue"),
            "returnWorkflow": [
                step(url("/cancel-continue"), error_status="ReturnFailed"),
                step(url("/cancel-continue/next")),
            ],
        },
        {
            "tenantId": tenant("bad-body"),
            "returnWorkflow": [step(url("/bad-body")), step(url("/bad-body/next"))],
        },
        {
            "tenantId": tenant("fail-stop"),
            "returnWorkflow": [
                step(url("/fail-stop"), stop_on_error=True, error_status="ReturnFailed"),
                step(url("/fail-stop/next")),
            ],
        },
        {
            "tenantId": tenant("fail-400"),
            "returnWorkflow": [
                step(url("/fail-400"), error_status="ReturnFailed"),
                step(url("/fail-400/next")),
            ],
        },
        {
            "tenantId": tenant("fail-404"),
            "returnWorkflow": [
                step(url("/fail-404"), stop_on_error=True, error_status="ReturnFailed")
            ],
        },
        {"tenantId": tenant("retry"), "returnWorkflow": [step(url("/retry"))]},
        {
            "tenantId": tenant("timeout"),
            "connectors": [{"name": "Webhook", "host": url("/timeout"), "timeout": 300}],
            "returnWorkflow": [step()],
        },
        {
            "tenantId": tenant("refused"),
            "returnWorkflow": [step(f"http://127.0.0.1:{refused_port}/returns")],
        },
        {
            # The only connector is another one: the step's connectorId finds nothing.
            "tenantId": tenant("no-connector"),
            "connectors": [{"name": "Webhook", "connectorId": "other", "host": url("/wrong")}],
            "returnWorkflow": [step(connector_id="missing"), step(url("/no-connector/next"))],
        },
        {
            "tenantId": tenant("skipped"),
            "returnWorkflow": [
                {**step(url("/skipped/inactive")), "active": False},
                step(url("/skipped/other-market"), enabledForMarkets=["SWE"]),
                step(url("/skipped/runs")),
            ],
        },
        {"tenantId": tenant("statuses"), "returnWorkflow": [step(url("/statuses"))]},
        {"tenantId": tenant("dead"), "returnWorkflow": [step(url("/dead"))]},
        {
            "tenantId": tenant("secret-bearer"),
            "connectors": [
                {"name": "Webhook", "host": url("/secret-bearer"), "bearerToken": "${ERP_TOKEN}"}
            ],
            "returnWorkflow": [step()],
        },
        {
            "tenantId": tenant("secret-basic"),
            "connectors": [
                {
                    "name": "Webhook",
                    "host": url("/secret-basic"),
                    "username": BASIC_USER,
                    "password": BASIC_PASSWORD,
                }
            ],
            "returnWorkflow": [step()],
        },
        update_settings(url("/update/v1")),
    ]


def update_settings(connector_host: str) -> dict:
    """The tenant whose connector host the settings-update test moves while the worker runs."""
    return {
        "tenantId": tenant("update"),
        "connectors": [{"name": "Webhook", "connectorId": "erp", "host": connector_host}],
        "returnWorkflow": [step(connector_id="erp")],
    }


def script_routes(receiver: RecordingReceiver) -> None:
    ok = Reply(status=200)
    receiver.route(
        "/success",
        Reply(
            body={
                "orderActionExecutionResults": [{"actionStatus": "Success"}],
                "orderPatch": {
                    "status": "ReturnApproved",
                    "tags": ["vip", "erp-approved"],
                    "properties": [{"key": "RmaNo", "value": "R-100"}],
                    "unknownField": "dropped",
                },
            }
        ),
    )
    receiver.route("/empty", Reply(status=200, body=b""))
    receiver.route(
        "/warning",
        Reply(
            body={
                # One object instead of the API's list: accepted too.
                "OrderActionExecutionResults": {
                    "ActionStatus": "Warning",
                    "ErrorReason": "stock check pending",
                },
                "OrderPatch": {"Tags": ["check-stock"]},
            }
        ),
    )
    receiver.route(
        "/cancel-stop",
        Reply(
            body={
                "orderActionExecutionResults": [
                    {"actionStatus": "Error", "cancelWorkflow": True, "errorReason": "ERP says no"}
                ],
                "orderPatch": {"properties": [{"key": "ErpState", "value": "rejected"}]},
            }
        ),
    )
    receiver.route("/cancel-stop/next", ok)
    receiver.route(
        "/cancel-continue",
        Reply(
            body={
                # Several results combine: cancel if any says so, the reasons joined.
                "orderActionExecutionResults": [
                    {"actionStatus": "Success"},
                    {"cancelWorkflow": True, "errorReason": "needs manual review"},
                    {"errorReason": "second opinion"},
                ],
                "orderPatch": {"tags": ["review"]},
            }
        ),
    )
    receiver.route("/cancel-continue/next", ok)
    receiver.route("/bad-body", Reply(status=200, body=b"<html>thanks!</html>"))
    receiver.route("/bad-body/next", ok)
    receiver.route("/fail-stop", Reply(status=500, body=b"boom"))
    receiver.route("/fail-stop/next", ok)
    receiver.route("/fail-400", Reply(status=400, body=b"bad order"))
    receiver.route("/fail-400/next", ok)
    receiver.route("/fail-404", Reply(status=404))
    receiver.route("/retry", Reply(status=503), Reply(status=502), Reply(status=500), ok)
    receiver.route("/timeout", Reply(status=200, delay=1.0))
    receiver.route("/no-connector/next", ok)
    receiver.route("/skipped/inactive", ok)
    receiver.route("/skipped/other-market", ok)
    receiver.route("/skipped/runs", ok)
    receiver.route("/statuses", ok)
    receiver.route("/dead", ok)
    receiver.route("/secret-bearer", ok)
    receiver.route("/secret-basic", ok)
    receiver.route("/update/v1", ok)
    receiver.route("/update/v2", ok)


PREVIOUS_STEP_ERROR = {
    "key": STEP,
    "message": "the ERP was down",
    "referenceId": "older-delivery",
    "severity": "Error",
    "status": "New",
}
OTHER_ERROR = {"key": "ExportOrder", "message": "not ours", "severity": "Warning", "status": "New"}


def all_inputs() -> list[tuple[str, bytes | None, bytes, Headers | None]]:
    """(label, key, value, headers), in the order they are produced."""

    def returned(name: str, **order_opts: Any) -> tuple[str, bytes, bytes, None]:
        oid = order_id(name)
        event = make_event(tenant(name), make_order(oid, **order_opts))
        return name, oid.encode(), orjson.dumps(event), None

    older_errors = [PREVIOUS_STEP_ERROR, OTHER_ERROR]
    statuses_oid = order_id("statuses")
    statuses_order = make_order(statuses_oid)
    dead_oid = order_id("dead")
    dead_key = dead_oid.encode()
    trace: Headers = [("trace", b"t-1")]
    without_tenant = make_event(None, make_order(dead_oid))
    unknown_tenant = make_event(f"nobody-{SUFFIX}", make_order(dead_oid))
    return [
        returned("success", errors=older_errors),
        returned("empty"),
        returned("warning", errors=older_errors),
        returned("cancel-stop", errors=[OTHER_ERROR]),
        returned("cancel-continue"),
        returned("bad-body"),
        returned("fail-stop", errors=[PREVIOUS_STEP_ERROR]),
        returned("fail-400"),
        returned("fail-404"),
        returned("retry"),
        returned("timeout"),
        returned("refused"),
        returned("no-connector"),
        returned("skipped"),
        returned("secret-bearer"),
        returned("secret-basic"),
        # Statuses that are not returns come first and must leave no trace; then one without
        # an eventId, whose id is derived from where it sits.
        (
            "statuses-shipped",
            statuses_oid.encode(),
            orjson.dumps(make_event(tenant("statuses"), statuses_order, status="Shipped")),
            None,
        ),
        (
            "statuses-completed",
            statuses_oid.encode(),
            orjson.dumps(make_event(tenant("statuses"), statuses_order, status="Completed")),
            None,
        ),
        (
            "statuses-partial",
            statuses_oid.encode(),
            orjson.dumps(
                make_event(
                    tenant("statuses"), statuses_order, status="PartiallyReturned", event_id=None
                )
            ),
            None,
        ),
        # Three dead letters on one key, then a valid event behind them on the same partition.
        ("dead-json", dead_key, b'{"tenantId": "x", "status": "Returned", "order": {', trace),
        ("dead-no-tenant", dead_key, orjson.dumps(without_tenant), trace),
        ("dead-unknown-tenant", dead_key, orjson.dumps(unknown_tenant), trace),
        returned("dead"),
    ]


# Records each scenario must produce, for reading the shared topics until all are there.
EXPECTED_PATCHES = 15
EXPECTED_EVENTS = 22
EXPECTED_DEAD_LETTERS = 3


async def produce_with_metadata(
    bootstrap: str, topic: str, records: Sequence[tuple[bytes | None, bytes, Headers | None]]
) -> list[RecordMetadata]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False)
    await producer.start()
    try:
        futures = [
            await producer.send(topic, value=value, key=key, headers=headers)
            for key, value, headers in records
        ]
        return list(await asyncio.gather(*futures))
    finally:
        await producer.stop()


async def publish(bootstrap: str, topics: TestTopics, documents: list[dict]) -> None:
    tenants = [TenantSettings.model_validate(d) for d in documents]
    await publish_settings(bootstrap, topics.catalog.settings.name, tenants)


async def read_json(bootstrap: str, topic: str, *, min_count: int, **kw: Any) -> list[dict]:
    records = await read_topic(bootstrap, topic, min_count=min_count, **kw)
    values = [orjson.loads(r.value) for r in records]
    for record, value in zip(records, values, strict=True):
        if "orderId" in value:
            assert record.key == value["orderId"].encode(), "records are keyed by order id"
    return values


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_receiver() -> AsyncIterator[RecordingReceiver]:
    """The module's webhook receiver (the tests' `receiver`, living as long as the worker)."""
    async with RecordingReceiver() as started:
        yield started


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def batch(
    module_topics: ModuleTopics,
    start_module_worker: StartWorker,
    shared_receiver: RecordingReceiver,
) -> Batch:
    topics = module_topics(partitions=4)
    bootstrap = topics.bootstrap
    refused = closed_port()
    script_routes(shared_receiver)
    await publish(bootstrap, topics, all_settings(shared_receiver, refused))
    worker = await asyncio.to_thread(
        start_module_worker,
        topics,
        log_level="debug",
        env={secret_env_name(tenant("secret-bearer"), "ERP_TOKEN"): BEARER_TOKEN},
        ready_timeout=60.0,
    )
    run = Batch(topics=topics, receiver=shared_receiver, worker=worker, closed_port=refused)
    inputs = all_inputs()
    sent = await produce_with_metadata(
        bootstrap, topics.catalog.input.name, [(k, v, h) for _, k, v, h in inputs]
    )
    run.inputs = {label: meta for (label, *_), meta in zip(inputs, sent, strict=True)}
    catalog = topics.catalog
    started = time.monotonic()
    run.patches, run.events, run.dead_letters = await asyncio.gather(
        read_json(
            bootstrap, catalog.patches.name, min_count=EXPECTED_PATCHES, timeout=60, idle=1.5
        ),
        read_json(bootstrap, catalog.events.name, min_count=EXPECTED_EVENTS, timeout=60, idle=1.5),
        read_json(
            bootstrap, catalog.dead_letters.name, min_count=EXPECTED_DEAD_LETTERS, timeout=60
        ),
    )
    counts = (len(run.patches), len(run.events), len(run.dead_letters))
    wanted = (EXPECTED_PATCHES, EXPECTED_EVENTS, EXPECTED_DEAD_LETTERS)
    if counts != wanted:
        # Shown under "Captured stdout setup" of the first test: why every test is short.
        state = "running" if worker.running else f"exited with {worker.returncode}"
        print(
            f"(patches, events, dead letters) = {counts}, expected {wanted}, after "
            f"{time.monotonic() - started:.1f} s; the worker is {state}; its log "
            f"{worker.log_path} ends:\n{worker.log_tail(60)}"
        )
    return run


# --- SPEC §6, row by row -----------------------------------------------------------------------


async def test_success_applies_the_patch_and_clears_this_steps_errors(batch: Batch) -> None:
    name, oid = tenant("success"), order_id("success")
    event_id = f"ev-{oid}-Returned"
    assert_records(
        batch.patches_for(oid),
        [
            expected_patch(
                name,
                oid,
                event_id,
                0,
                {
                    "status": "ReturnApproved",
                    "tags": ["vip", "erp-approved"],
                    "properties": [{"key": "RmaNo", "value": "R-100"}],
                    # The step's earlier error is gone, other errors stay.
                    "errors": [OTHER_ERROR],
                },
                ignored=["unknownField"],
            )
        ],
    )
    assert_records(
        batch.events_for(oid),
        [
            expected_event(
                name, oid, event_id, 0, action_status="Success", attempts=1, http_status=200
            )
        ],
    )
    [request] = batch.requests("/success")
    assert request.method == "POST"
    sent_order = make_order(oid, errors=[PREVIOUS_STEP_ERROR, OTHER_ERROR])
    body = request.json()
    assert body["Value"] == sent_order  # unchanged, unknown fields included
    assert body["ReturnOrderFormId"] == RETURN_FORM  # the newest return form
    assert body["WorkflowStep"]["name"] == STEP
    header_property = body["WorkflowStep"]["properties"][1]
    assert {k: header_property.get(k) for k in ("key", "value", "keyGroup")} == {
        "key": "X-Source",
        "value": "oms",
        "keyGroup": "RequestHeaders",
    }
    assert (request.header("User-Agent") or "").startswith("OmniumOms/")
    assert request.header("Accept") == "application/json"
    assert (request.header("Content-Type") or "").startswith("application/json")
    assert request.header("X-Delivery-Count") == "1"
    assert request.header("X-Max-Delivery-Count") == "4"
    assert request.header("Idempotency-Key") == delivery_key(name, event_id, 0)
    assert request.header("X-Source") == "oms"
    assert request.header("Authorization") is None  # inline Host, no connector


async def test_success_with_an_empty_body_changes_nothing(batch: Batch) -> None:
    name, oid = tenant("empty"), order_id("empty")
    event_id = f"ev-{oid}-Returned"
    assert batch.patches_for(oid) == []  # nothing to change, no errors to clear
    assert_records(
        batch.events_for(oid),
        [
            expected_event(
                name, oid, event_id, 0, action_status="Success", attempts=1, http_status=200
            )
        ],
    )
    assert len(batch.requests("/empty")) == 1


async def test_warning_answer_keeps_the_patch_and_the_old_errors(batch: Batch) -> None:
    name, oid = tenant("warning"), order_id("warning")
    event_id = f"ev-{oid}-Returned"
    assert_records(
        batch.patches_for(oid),
        [expected_patch(name, oid, event_id, 0, {"tags": ["check-stock"]})],
    )
    assert_records(
        batch.events_for(oid),
        [
            expected_event(
                name,
                oid,
                event_id,
                0,
                action_status="Warning",
                attempts=1,
                http_status=200,
                error_reason="stock check pending",
            )
        ],
    )


async def test_cancel_with_stop_on_error_sets_error_status_and_skips_the_rest(
    batch: Batch,
) -> None:
    name, oid = tenant("cancel-stop"), order_id("cancel-stop")
    event_id = f"ev-{oid}-Returned"
    reference = delivery_key(name, event_id, 0)
    [patch] = batch.patches_for(oid)
    errors = patch["patch"]["errors"]
    assert len(errors) == 2 and errors[0] == OTHER_ERROR
    entry, message, details = split_entry(errors[1])
    assert entry == entry_fields(reference, "Error")
    assert message == "ERP says no"
    assert details == "HTTP 200 after 1 attempt"
    assert_records(
        [patch],
        [
            expected_patch(
                name,
                oid,
                event_id,
                0,
                {
                    "properties": [{"key": "ErpState", "value": "rejected"}],
                    "status": "ReturnFailed",
                    "errors": errors,
                },
                connector_id="erp",
            )
        ],
    )
    assert_records(
        batch.events_for(oid),
        [
            expected_event(
                name,
                oid,
                event_id,
                0,
                action_status="Error",
                attempts=1,
                http_status=200,
                cancel_workflow=True,
                continue_workflow=False,
                error_reason="ERP says no",
                skipped_steps=[1],
                connector_id="erp",
            )
        ],
    )
    assert len(batch.requests("/cancel-stop")) == 1
    assert batch.requests("/cancel-stop/next") == []  # the second step is never called


async def test_cancel_without_stop_on_error_warns_and_continues(batch: Batch) -> None:
    name, oid = tenant("cancel-continue"), order_id("cancel-continue")
    event_id = f"ev-{oid}-Returned"
    reference = delivery_key(name, event_id, 0)
    patches = batch.patches_for(oid)
    assert len(patches) == 2, patches
    [entry] = patches[0]["patch"]["errors"]
    rest, message, details = split_entry(entry)
    assert rest == entry_fields(reference, "Warning")
    assert message == "needs manual review; second opinion"
    assert details == "HTTP 200 after 1 attempt"
    assert_records(
        patches,
        [
            # No ErrorStatus without stopOnError, though the step has one.
            expected_patch(name, oid, event_id, 0, {"tags": ["review"], "errors": [entry]}),
            # The next step succeeds, which clears the step errors of the order it saw.
            expected_patch(name, oid, event_id, 1, {"errors": []}),
        ],
    )
    assert_records(
        batch.events_for(oid),
        [
            expected_event(
                name,
                oid,
                event_id,
                0,
                action_status="Warning",
                attempts=1,
                http_status=200,
                cancel_workflow=True,
                error_reason="needs manual review; second opinion",
            ),
            expected_event(
                name, oid, event_id, 1, action_status="Success", attempts=1, http_status=200
            ),
        ],
    )
    # The next step saw the order with the first step's patch applied.
    [next_request] = batch.requests("/cancel-continue/next")
    seen = next_request.json()["Value"]
    assert seen["tags"] == ["review"]
    assert seen["errors"] == [entry]
    assert seen["status"] == "Returned"
    assert next_request.header("Idempotency-Key") == delivery_key(name, event_id, 1)


async def test_failed_delivery_with_stop_on_error_after_all_retries(batch: Batch) -> None:
    name, oid = tenant("fail-stop"), order_id("fail-stop")
    event_id = f"ev-{oid}-Returned"
    reference = delivery_key(name, event_id, 0)
    [patch] = batch.patches_for(oid)
    # The order's earlier error of this step stays: only a success clears it.
    assert patch["patch"]["errors"][0] == PREVIOUS_STEP_ERROR
    entry, message, details = split_entry(patch["patch"]["errors"][1])
    assert entry == entry_fields(reference, "Error")
    assert "HTTP 500" in message
    assert details == "HTTP 500 after 4 attempts"
    assert_records(
        [patch],
        [
            expected_patch(
                name,
                oid,
                event_id,
                0,
                {"status": "ReturnFailed", "errors": patch["patch"]["errors"]},
            )
        ],
    )
    assert_records(
        batch.events_for(oid),
        [
            expected_event(
                name,
                oid,
                event_id,
                0,
                action_status="Error",
                attempts=4,
                http_status=500,
                continue_workflow=False,
                error_reason=message,
                skipped_steps=[1],
            )
        ],
    )
    requests = batch.requests("/fail-stop")
    assert [r.attempt for r in requests] == [1, 2, 3, 4]
    assert {r.header("X-Max-Delivery-Count") for r in requests} == {"4"}
    assert {r.header("Idempotency-Key") for r in requests} == {reference}
    assert batch.requests("/fail-stop/next") == []


async def test_failed_delivery_without_stop_on_error_warns_and_continues(batch: Batch) -> None:
    name, oid = tenant("fail-400"), order_id("fail-400")
    event_id = f"ev-{oid}-Returned"
    reference = delivery_key(name, event_id, 0)
    patches = batch.patches_for(oid)
    assert len(patches) == 2, patches
    [entry] = patches[0]["patch"]["errors"]
    rest, message, details = split_entry(entry)
    assert rest == entry_fields(reference, "Warning")
    assert "HTTP 400" in message and "not retried" in message
    assert details == "HTTP 400 after 1 attempt"
    assert_records(
        patches,
        [
            expected_patch(name, oid, event_id, 0, {"errors": [entry]}),  # no ErrorStatus
            expected_patch(name, oid, event_id, 1, {"errors": []}),
        ],
    )
    assert_records(
        batch.events_for(oid),
        [
            expected_event(
                name,
                oid,
                event_id,
                0,
                action_status="Warning",
                attempts=1,
                http_status=400,
                error_reason=message,
            ),
            expected_event(
                name, oid, event_id, 1, action_status="Success", attempts=1, http_status=200
            ),
        ],
    )
    assert [r.attempt for r in batch.requests("/fail-400")] == [1]  # 400 is not retried
    assert len(batch.requests("/fail-400/next")) == 1


async def test_a_2xx_body_that_is_no_result_fails_without_retry(batch: Batch) -> None:
    name, oid = tenant("bad-body"), order_id("bad-body")
    event_id = f"ev-{oid}-Returned"
    reference = delivery_key(name, event_id, 0)
    patches = batch.patches_for(oid)
    assert len(patches) == 2, patches
    [entry] = patches[0]["patch"]["errors"]
    rest, message, details = split_entry(entry)
    assert rest == entry_fields(reference, "Warning")
    assert "not JSON" in message and "<html>" in message
    assert details == "HTTP 200 after 1 attempt"
    assert_records(
        patches,
        [
            expected_patch(name, oid, event_id, 0, {"errors": [entry]}),
            expected_patch(name, oid, event_id, 1, {"errors": []}),
        ],
    )
    assert_records(
        batch.events_for(oid),
        [
            expected_event(
                name,
                oid,
                event_id,
                0,
                action_status="Warning",
                attempts=1,
                http_status=200,
                error_reason=message,
            ),
            expected_event(
                name, oid, event_id, 1, action_status="Success", attempts=1, http_status=200
            ),
        ],
    )
    assert [r.attempt for r in batch.requests("/bad-body")] == [1]


async def test_404_is_not_retried_and_fails_the_step(batch: Batch) -> None:
    name, oid = tenant("fail-404"), order_id("fail-404")
    event_id = f"ev-{oid}-Returned"
    reference = delivery_key(name, event_id, 0)
    [patch] = batch.patches_for(oid)
    [entry] = patch["patch"]["errors"]
    rest, message, details = split_entry(entry)
    assert rest == entry_fields(reference, "Error")
    assert "HTTP 404" in message and details == "HTTP 404 after 1 attempt"
    assert_records(
        [patch],
        [expected_patch(name, oid, event_id, 0, {"status": "ReturnFailed", "errors": [entry]})],
    )
    assert_records(
        batch.events_for(oid),
        [
            expected_event(
                name,
                oid,
                event_id,
                0,
                action_status="Error",
                attempts=1,
                http_status=404,
                continue_workflow=False,
                error_reason=message,
            )
        ],
    )
    assert [r.attempt for r in batch.requests("/fail-404")] == [1]


async def test_retries_until_success_with_one_idempotency_key(batch: Batch) -> None:
    name, oid = tenant("retry"), order_id("retry")
    event_id = f"ev-{oid}-Returned"
    reference = delivery_key(name, event_id, 0)
    assert batch.patches_for(oid) == []
    assert_records(
        batch.events_for(oid),
        [
            expected_event(
                name, oid, event_id, 0, action_status="Success", attempts=4, http_status=200
            )
        ],
    )
    requests = batch.requests("/retry")
    assert [r.attempt for r in requests] == [1, 2, 3, 4]
    assert [r.status for r in requests] == [503, 502, 500, 200]
    assert {r.header("X-Max-Delivery-Count") for r in requests} == {"4"}
    assert {r.header("Idempotency-Key") for r in requests} == {reference}
    assert len({r.body for r in requests}) == 1  # the same request each time
    # The worker was started with --retry-delays 0.2,0.4,0.6.
    gaps = [b.received_at - a.received_at for a, b in itertools.pairwise(requests)]
    assert all(gap >= want - 0.05 for gap, want in zip(gaps, [0.2, 0.4, 0.6], strict=True)), gaps


async def test_timeouts_are_retried_then_fail(batch: Batch) -> None:
    name, oid = tenant("timeout"), order_id("timeout")
    event_id = f"ev-{oid}-Returned"
    [event] = batch.events_for(oid)
    assert_records(
        [event],
        [
            expected_event(
                name,
                oid,
                event_id,
                0,
                action_status="Warning",
                attempts=4,
                http_status=None,
                error_reason=event["errorReason"],
            )
        ],
    )
    assert "no answer within 0.3 s" in event["errorReason"]
    [patch] = batch.patches_for(oid)
    [entry] = patch["patch"]["errors"]
    assert entry["severity"] == "Warning" and entry["details"] == "no response after 4 attempts"
    requests = batch.requests("/timeout")
    assert [r.attempt for r in requests] == [1, 2, 3, 4]
    assert {r.header("Idempotency-Key") for r in requests} == {delivery_key(name, event_id, 0)}


async def test_connection_refused_is_retried_then_fails(batch: Batch) -> None:
    name, oid = tenant("refused"), order_id("refused")
    event_id = f"ev-{oid}-Returned"
    [event] = batch.events_for(oid)
    assert_records(
        [event],
        [
            expected_event(
                name,
                oid,
                event_id,
                0,
                action_status="Warning",
                attempts=4,
                http_status=None,
                error_reason=event["errorReason"],
            )
        ],
    )
    assert "ClientConnectorError" in event["errorReason"], event["errorReason"]
    assert str(batch.closed_port) in event["errorReason"]
    assert event["durationMs"] >= 1200  # the three waits between the four attempts
    [patch] = batch.patches_for(oid)
    assert [e["severity"] for e in patch["patch"]["errors"]] == ["Warning"]


async def test_connector_not_found_is_an_error_but_the_workflow_continues(batch: Batch) -> None:
    name, oid = tenant("no-connector"), order_id("no-connector")
    event_id = f"ev-{oid}-Returned"
    reference = delivery_key(name, event_id, 0)
    patches = batch.patches_for(oid)
    assert len(patches) == 2, patches
    [entry] = patches[0]["patch"]["errors"]
    rest, message, _ = split_entry(entry)
    assert rest == entry_fields(reference, "Error")
    assert "'missing'" in message and "no 'Webhook' connector" in message
    assert_records(
        patches,
        [
            expected_patch(name, oid, event_id, 0, {"errors": [entry]}, connector_id="missing"),
            # The next step has an inline Host and names no connectorId: the tenant's one
            # Webhook connector resolves by name and lends its settings (SPEC §3).
            expected_patch(name, oid, event_id, 1, {"errors": []}, connector_id="other"),
        ],
    )
    assert_records(
        batch.events_for(oid),
        [
            expected_event(
                name,
                oid,
                event_id,
                0,
                action_status="Error",
                attempts=0,
                http_status=None,
                error_reason=message,
                connector_id="missing",
            ),
            expected_event(
                name,
                oid,
                event_id,
                1,
                action_status="Success",
                attempts=1,
                http_status=200,
                connector_id="other",
            ),
        ],
    )
    assert batch.requests("/wrong") == []  # never some other connector's host
    assert len(batch.requests("/no-connector/next")) == 1


async def test_inactive_and_out_of_scope_steps_are_skipped_silently(batch: Batch) -> None:
    name, oid = tenant("skipped"), order_id("skipped")
    event_id = f"ev-{oid}-Returned"
    assert batch.patches_for(oid) == []
    assert_records(
        batch.events_for(oid),
        [
            expected_event(
                name, oid, event_id, 2, action_status="Success", attempts=1, http_status=200
            )
        ],
    )
    assert batch.requests("/skipped/inactive") == []
    assert batch.requests("/skipped/other-market") == []
    assert len(batch.requests("/skipped/runs")) == 1


# --- input handling ------------------------------------------------------------------------------


async def test_other_statuses_produce_nothing_and_the_worker_goes_on(batch: Batch) -> None:
    name, oid = tenant("statuses"), order_id("statuses")
    partial = batch.inputs["statuses-partial"]
    assert partial.partition == batch.inputs["statuses-shipped"].partition
    derived = f"{partial.topic}/{partial.partition}/{partial.offset}"
    assert batch.patches_for(oid) == []
    assert_records(
        batch.events_for(oid),
        [
            expected_event(
                name, oid, derived, 0, action_status="Success", attempts=1, http_status=200
            )
        ],
    )
    [request] = batch.requests("/statuses")  # Shipped and Completed were never sent
    assert request.header("Idempotency-Key") == delivery_key(name, derived, 0)


async def test_bad_input_goes_to_dead_letters_and_the_worker_goes_on(batch: Batch) -> None:
    dead_oid = order_id("dead")
    topic = batch.topics.catalog.input.name
    inputs = {label: meta for label, meta in batch.inputs.items() if label.startswith("dead-")}
    values = {label: value for label, _, value, _ in all_inputs() if label.startswith("dead-")}
    by_reason = {d["reason"]: d for d in batch.dead_letters if d["key"] == dead_oid}
    assert len(batch.dead_letters) == 3, batch.dead_letters
    assert set(by_reason) == {"invalid_json", "invalid_event", "unknown_tenant"}
    for reason, label in [
        ("invalid_json", "dead-json"),
        ("invalid_event", "dead-no-tenant"),
        ("unknown_tenant", "dead-unknown-tenant"),
    ]:
        letter = by_reason[reason]
        where = inputs[label]
        assert letter["topic"] == topic
        assert (letter["partition"], letter["offset"]) == (where.partition, where.offset), reason
        assert base64.b64decode(letter["value"]) == values[label]
        assert letter["headers"] == {"trace": "t-1"}
        assert letter["error"]
    assert "tenantId" in by_reason["invalid_event"]["error"]
    assert f"nobody-{SUFFIX}" in by_reason["unknown_tenant"]["error"]
    # The valid event behind them on the same partition was still processed.
    assert inputs["dead-json"].partition == batch.inputs["dead"].partition
    name = tenant("dead")
    event_id = f"ev-{dead_oid}-Returned"
    assert_records(
        batch.events_for(dead_oid),
        [
            expected_event(
                name, dead_oid, event_id, 0, action_status="Success", attempts=1, http_status=200
            )
        ],
    )
    assert batch.worker.running


async def test_secrets_reach_the_webhook_but_never_the_log(batch: Batch) -> None:
    [bearer] = batch.requests("/secret-bearer")
    [basic] = batch.requests("/secret-basic")
    assert bearer.header("Authorization") == f"Bearer {BEARER_TOKEN}"  # from ${ERP_TOKEN}
    pair = base64.b64encode(f"{BASIC_USER}:{BASIC_PASSWORD}".encode()).decode()
    assert basic.header("Authorization") == f"Basic {pair}"
    for name in ("secret-bearer", "secret-basic"):
        [event] = batch.events_for(order_id(name))
        assert event["actionStatus"] == "Success"
    log = batch.worker.log_text()
    assert "webhook attempt 1/4 to " in log  # the worker really logged at debug level
    for secret in (BEARER_TOKEN, BASIC_PASSWORD, pair):
        assert secret not in log, f"a secret is in the worker log {batch.worker.log_path}"


async def test_settings_update_takes_effect_without_restart(batch: Batch) -> None:
    """Runs after the batch on the same worker: v1 path, publish v2, the next event goes to v2."""
    name = tenant("update")
    bootstrap = batch.topics.bootstrap
    input_topic = batch.topics.catalog.input.name
    first, second = order_id("update", 1), order_id("update", 2)
    await produce_with_metadata(
        bootstrap,
        input_topic,
        [(first.encode(), orjson.dumps(make_event(name, make_order(first))), None)],
    )
    await batch.receiver.wait_for_requests(1, path="/update/v1", timeout=20)

    await publish(bootstrap, batch.topics, [update_settings(batch.url("/update/v2"))])
    # The worker reads the settings topic on its own schedule (a fetch here takes up to 1.5 s):
    # give it a moment, then check that the very next event uses the new host.
    await asyncio.sleep(3.0)
    await produce_with_metadata(
        bootstrap,
        input_topic,
        [(second.encode(), orjson.dumps(make_event(name, make_order(second))), None)],
    )
    [request] = await batch.receiver.wait_for_requests(1, path="/update/v2", timeout=20)
    assert request.json()["Value"]["id"] == second
    [before] = batch.requests("/update/v1")
    assert before.json()["Value"]["id"] == first
    events = await read_json(
        bootstrap, batch.topics.catalog.events.name, min_count=EXPECTED_EVENTS + 2
    )
    by_order = {e["orderId"]: e for e in events if e["tenantId"] == name}
    assert set(by_order) == {first, second}
    assert {(e["actionStatus"], e["step"]["connectorId"]) for e in by_order.values()} == {
        ("Success", "erp")
    }
    assert batch.worker.running
