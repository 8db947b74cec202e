"""Issue 13 on the real broker: the attempt log, `replay --failed`, dead-letter redrive, the
dashboard's metrics and the output schemas, in one module-wide run (`story`) on one worker:

1. a worker with its web server; traffic: a flapping endpoint (500, dropped connection, 200),
   a tenant whose endpoint is down for two of its three orders, an unknown tenant and a record
   that is not JSON (two dead letters);
2. the endpoint is fixed and the unknown tenant's settings published;
3. `replay --failed --dry-run`, then `replay --failed`;
4. `dead-letters list`; `redrive --reason unknown_tenant` twice (the second is refused);
   `redrive --reason invalid_json` (fails again into a new dead letter, the link kept);
5. every output topic read once, /metrics scraped once.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import jsonschema
import orjson
import pytest
import pytest_asyncio
from aiokafka.structs import ConsumerRecord
from prometheus_client.parser import text_string_to_metric_families

from models.settings import TenantSettings
from streams.core.identity import delivery_id
from streams.core.redrive import REDRIVE_HEADER
from streams.kafka.settings_file import publish_settings
from streams.processes.ports import free_port
from tests.conftest import TestTopics
from tests.integration.conftest import ModuleTopics, StartWorker
from tests.integration.worker_process import RETURNHOOK, TEST_RETRY_DELAYS, _environment
from tests.kafka_helpers import produce, read_topic
from tests.receiver import RecordedRequest, RecordingReceiver, Reply
from tests.test_dashboard import dashboard_metric_names

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

SUFFIX = uuid.uuid4().hex[:6]
T_FLAP, T_DOWN, T_LATER = (f"{name}-{SUFFIX}" for name in ("flap", "down", "later"))
STEP = "WebhookReturnWorkflowStep"
DELAYS = [float(d) for d in TEST_RETRY_DELAYS.split(",")]
SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def oid(name: str) -> str:
    return f"o-{name}-{SUFFIX}"


FLAP, LATER = oid("flap"), oid("later")
FAILING = [oid("down1"), oid("down2")]
FINE = oid("fine")
BAD_KEY = f"bad-{SUFFIX}".encode()
SUCCESS = Reply(body={"orderActionExecutionResults": [{"actionStatus": "Success"}]})
DOWN = Reply(status=500, body=b"down")


def event(tenant: str, order_id: str) -> tuple[bytes, bytes]:
    document = {
        "eventId": f"ev-{order_id}",
        "tenantId": tenant,
        "orderId": order_id,
        "status": "Returned",
        "timestamp": "2026-03-01T10:00:00Z",
        "order": {"id": order_id, "status": "Returned", "marketId": "NOR", "errors": []},
    }
    return order_id.encode(), orjson.dumps(document)


def tenant_settings(tenant: str, url: str, stop: bool = False) -> TenantSettings:
    step = {"name": STEP, "active": True, "stopOnError": stop, "properties": []}
    step["properties"] = [{"key": "Host", "value": url}]
    return TenantSettings.model_validate({"tenantId": tenant, "returnWorkflow": [step]})


@dataclass
class Cli:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    def __str__(self) -> str:
        return (
            f"$ returnhook {' '.join(self.args)} -> {self.returncode}\n{self.stdout}{self.stderr}"
        )


async def cli(topics: TestTopics, *args: str) -> Cli:
    full = [*args, "--broker", topics.bootstrap, "--topics-file", str(topics.path)]
    done = await asyncio.to_thread(
        subprocess.run,
        [str(RETURNHOOK), *full],
        capture_output=True,
        text=True,
        env=_environment({"COLUMNS": "250"}),
        timeout=90,
        stdin=subprocess.DEVNULL,
    )
    return Cli(full, done.returncode, done.stdout, done.stderr)


@dataclass
class Story:
    topics: TestTopics
    receiver: RecordingReceiver
    requests_before_replay: int = 0
    failed_dry_run: Cli | None = None
    failed_run: Cli | None = None
    replay_requests: list[RecordedRequest] = field(default_factory=list)
    listed: Cli | None = None
    redrive_tenant: Cli | None = None
    redrive_again: Cli | None = None
    redrive_bad: Cli | None = None
    listed_after: Cli | None = None
    inputs: list[ConsumerRecord] = field(default_factory=list)
    topics_read: dict[str, list[dict]] = field(default_factory=dict)
    metrics: str = ""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def story_receiver() -> AsyncIterator[RecordingReceiver]:
    async with RecordingReceiver() as started:
        yield started


async def scrape(port: int) -> str:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
        session.get(f"http://127.0.0.1:{port}/metrics") as response,
    ):
        assert response.status == 200
        return await response.text()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def story(
    module_topics: ModuleTopics, start_module_worker: StartWorker, story_receiver: RecordingReceiver
) -> Story:
    topics = module_topics(partitions=2)
    receiver = story_receiver
    catalog, bootstrap = topics.catalog, topics.bootstrap
    down = {"now": True}

    def down_route(request: RecordedRequest) -> Reply:
        failing = down["now"] and request.json()["Value"]["id"] in FAILING
        return DOWN if failing else SUCCESS

    receiver.route("/flap", Reply(status=500), Reply(drop=True), SUCCESS)
    receiver.route("/down", down_route)
    receiver.route("/later", SUCCESS)
    await publish_settings(
        bootstrap,
        catalog.settings.name,
        [
            tenant_settings(T_FLAP, receiver.url("/flap")),
            tenant_settings(T_DOWN, receiver.url("/down"), stop=True),
        ],
    )
    port = free_port()
    worker = await asyncio.to_thread(
        start_module_worker, topics, web=True, extra_args=["--web-port", str(port)]
    )

    # 1. Traffic.
    start = datetime.now(UTC).isoformat(timespec="milliseconds")
    await asyncio.sleep(1.0)  # the embedded broker finds offsets by its own write time
    records = [event(T_FLAP, FLAP), *(event(T_DOWN, o) for o in [*FAILING, FINE])]
    records.append(event(T_LATER, LATER))
    await produce(bootstrap, catalog.input.name, records)
    await produce(bootstrap, catalog.input.name, [(BAD_KEY, b"{not json")], [("x-trace", b"t1")])
    await receiver.wait_for_requests(3 + 4 * len(FAILING) + 1, timeout=30)
    await read_topic(bootstrap, catalog.events.name, min_count=4, idle=0.5)
    await read_topic(bootstrap, catalog.dead_letters.name, min_count=2, idle=0.5)

    # 2. Fixed.
    down["now"] = False
    await publish_settings(
        bootstrap, catalog.settings.name, [tenant_settings(T_LATER, receiver.url("/later"))]
    )
    run = Story(topics=topics, receiver=receiver)

    # 3. replay --failed.
    run.requests_before_replay = len(receiver.requests)
    run.failed_dry_run = await cli(topics, "replay", "--from", start, "--failed", "--dry-run")
    run.failed_run = await cli(
        topics, "replay", "--from", start, "--failed", "--retry-delays", TEST_RETRY_DELAYS
    )
    run.replay_requests = receiver.requests[run.requests_before_replay :]

    # 4. Dead letters.
    run.listed = await cli(topics, "dead-letters", "list")
    run.redrive_tenant = await cli(topics, "dead-letters", "redrive", "--reason", "unknown_tenant")
    await receiver.wait_for_requests(1, path="/later", timeout=30)
    run.redrive_again = await cli(topics, "dead-letters", "redrive", "--reason", "unknown_tenant")
    run.redrive_bad = await cli(topics, "dead-letters", "redrive", "--reason", "invalid_json")
    await read_topic(bootstrap, catalog.dead_letters.name, min_count=3, idle=0.5)
    run.listed_after = await cli(topics, "dead-letters", "list")

    # 5. Read everything once; scrape once everything is acknowledged.
    roles = {
        "patches": catalog.patches,
        "events": catalog.events,
        "deadLetters": catalog.dead_letters,
        "attempts": catalog.attempts,
    }
    read = await asyncio.gather(
        *(read_topic(bootstrap, spec.name, idle=1.0) for spec in roles.values()),
        read_topic(bootstrap, catalog.input.name, min_count=8, idle=0.5),
    )
    run.topics_read = {
        role: [orjson.loads(r.value) for r in rs] for role, rs in zip(roles, read[:-1], strict=True)
    }
    run.inputs = read[-1]
    deadline = time.monotonic() + 15
    while True:
        run.metrics = await scrape(port)
        if "returnhook_uncommitted_events 0.0" in run.metrics or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.3)
    assert worker.running, worker.log_tail()
    return run


# --- the attempt log ---------------------------------------------------------------------------


def originals(story: Story, role: str, order: str) -> list[dict]:
    return [r for r in story.topics_read[role] if r.get("orderId") == order and not r["replayId"]]


def seconds(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


async def test_a_flapping_endpoint_yields_one_record_per_attempt(story: Story) -> None:
    attempts = sorted(originals(story, "attempts", FLAP), key=lambda a: a["attempt"])
    assert [(a["attempt"], a["httpStatus"], a["errorClass"]) for a in attempts] == [
        (1, 500, None),
        (2, None, "connection_error"),
        (3, 200, None),
    ]
    key = delivery_id(T_FLAP, f"ev-{FLAP}", 0)
    sent = [r for r in story.receiver.requests_for("/flap") if r.json()["Value"]["id"] == FLAP]
    assert {r.header("Idempotency-Key") for r in sent} == {key}
    for attempt in attempts:
        assert attempt["deliveryId"] == attempt["idempotencyKey"] == key
        assert (attempt["tenantId"], attempt["orderId"], attempt["maxAttempts"]) == (
            T_FLAP,
            FLAP,
            4,
        )
        assert attempt["step"] == {"index": 0, "name": STEP, "connectorId": None}
        assert attempt["host"] == f"http://127.0.0.1:{story.receiver.port}"
    # Due times: the configured delay after each failed attempt, and the next one not before it.
    for attempt, following, delay in zip(attempts, attempts[1:], DELAYS, strict=False):
        ended = seconds(attempt["startedAt"]) + attempt["durationMs"] / 1000
        due = seconds(attempt["retryAt"])
        assert delay - 0.01 <= due - ended <= delay + 1.0, attempt
        assert seconds(following["startedAt"]) >= due - 0.002, (attempt, following)
    assert attempts[-1]["retryAt"] is None
    [event_record] = originals(story, "events", FLAP)
    assert event_record["attempts"] == 3 and event_record["actionStatus"] == "Success"


async def test_a_down_endpoint_logs_every_retry_and_the_last_has_no_due_time(story: Story) -> None:
    attempts = sorted(originals(story, "attempts", FAILING[0]), key=lambda a: a["attempt"])
    assert [(a["attempt"], a["httpStatus"]) for a in attempts] == [(n, 500) for n in (1, 2, 3, 4)]
    assert [a["retryAt"] is not None for a in attempts] == [True, True, True, False]
    assert len(originals(story, "attempts", FINE)) == 1


# --- replay --failed ---------------------------------------------------------------------------


async def test_replay_failed_calls_exactly_the_orders_that_failed(story: Story) -> None:
    run = story.failed_run
    assert run is not None and run.returncode == 0, str(run)
    called = sorted(r.json()["Value"]["id"] for r in story.replay_requests)
    assert called == sorted(FAILING), str(run)
    replayed = [e for e in story.topics_read["events"] if e["replayId"]]
    assert sorted((e["orderId"], e["actionStatus"]) for e in replayed) == [
        (o, "Success") for o in sorted(FAILING)
    ]
    assert "failed only: 2 input event(s)" in run.stdout, str(run)
    replayed_attempts = [a for a in story.topics_read["attempts"] if a["replayId"]]
    assert sorted(a["orderId"] for a in replayed_attempts) == sorted(FAILING)


async def test_replay_failed_dry_run_lists_them_and_calls_nothing(story: Story) -> None:
    run = story.failed_dry_run
    assert run is not None and run.returncode == 0, str(run)
    for order in FAILING:
        assert order in run.stdout, str(run)
    for order in (FINE, FLAP, LATER):
        assert order not in run.stdout, str(run)
    assert "not failed (--failed)" in run.stdout


# --- dead letters ------------------------------------------------------------------------------


async def test_dead_letters_are_listed_with_reason_tenant_and_source(story: Story) -> None:
    run = story.listed
    assert run is not None and run.returncode == 0, str(run)
    assert "2 dead letter(s)" in run.stdout, str(run)
    assert "unknown_tenant" in run.stdout and "invalid_json" in run.stdout
    assert T_LATER in run.stdout
    assert f"{story.topics.catalog.input.name}[" in run.stdout


async def test_a_redriven_dead_letter_is_processed_and_only_once(story: Story) -> None:
    first, again = story.redrive_tenant, story.redrive_again
    assert first is not None and first.returncode == 0, str(first)
    assert "1 redriven, 0 refused" in first.stdout, str(first)
    assert again is not None and again.returncode == 1, str(again)
    assert "refused" in again.stdout and "already redriven" in again.stdout, str(again)
    redriven = [r for r in story.inputs if r.key == LATER.encode()]
    assert len(redriven) == 2  # the original and exactly one redrive
    links = [dict(r.headers or ()).get(REDRIVE_HEADER) for r in redriven]
    assert links[0] is None and links[1].decode().startswith(
        f"{story.topics.catalog.dead_letters.name}/"
    )
    [processed] = [e for e in story.topics_read["events"] if e["orderId"] == LATER]
    assert processed["actionStatus"] == "Success"
    assert [r.json()["Value"]["id"] for r in story.receiver.requests_for("/later")] == [LATER]


async def test_what_fails_again_goes_to_dead_letters_with_the_link(story: Story) -> None:
    assert story.redrive_bad is not None and story.redrive_bad.returncode == 0
    bad = [d for d in story.topics_read["deadLetters"] if d["key"] == BAD_KEY.decode()]
    assert len(bad) == 2 and bad[0]["value"] == bad[1]["value"]
    assert REDRIVE_HEADER not in bad[0]["headers"]
    first_ref = bad[1]["headers"][REDRIVE_HEADER]
    assert first_ref.startswith(f"{story.topics.catalog.dead_letters.name}/")
    assert bad[1]["headers"]["x-trace"] == "t1"  # the original headers travel too
    listed = story.listed_after
    assert listed is not None and "3 dead letter(s)" in listed.stdout, str(listed)
    # The original's row names it as the dead letter, the new one's as what it is a redrive of.
    rows = [line for line in listed.stdout.splitlines() if first_ref in line]
    assert len(rows) == 2 and "redrive of" in listed.stdout, str(listed)


# --- schemas and the dashboard -----------------------------------------------------------------


async def test_real_output_records_validate_against_the_committed_schemas(story: Story) -> None:
    files = {
        "patches": "order-patch",
        "events": "order-event",
        "deadLetters": "dead-letter",
        "attempts": "attempt",
    }
    for role, stem in files.items():
        schema = json.loads((SCHEMAS / f"{stem}.schema.json").read_text())
        validator = jsonschema.Draft202012Validator(schema)
        records = story.topics_read[role]
        assert records, f"no {role} records to validate"
        for record in records:
            errors = [e.message for e in validator.iter_errors(record)]
            assert not errors, (role, record, errors)
    assert story.topics_read["patches"], "the Errors (stopOnError) write error entries as patches"


async def test_every_metric_the_dashboard_queries_is_in_the_workers_metrics(story: Story) -> None:
    present: set[str] = set()
    for family in text_string_to_metric_families(story.metrics):
        present.add(family.name)
        present.update(sample.name for sample in family.samples)
    missing = sorted(dashboard_metric_names() - present)
    assert not missing, f"the dashboard queries metrics the worker does not export: {missing}"
