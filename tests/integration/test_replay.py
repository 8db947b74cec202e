"""`returnhook replay` end to end: the real broker, a real receiver, a real worker, the real CLI.

One module-wide run (`story`), in real time, because the embedded broker finds offsets by its own
write time:

1. the receiver answers; one event is produced (before the window) and succeeds;
2. the window opens (1 s after it, 1 s before the next); the receiver answers 500; four return
   events of two tenants and one Shipped event are produced and fail (Error / Warning);
3. the window closes; one more event fails (after the window);
4. the receiver is fixed; the worker group's committed offsets are noted;
5. `replay --dry-run` of the window; `replay --tenant A`; `replay --order oA2 --order oB1`;
   the committed offsets are read again, and every output topic is read once.

The tests then check their part of what the receiver saw and what the topics hold. The CLI's
error cases, and the engine run in-process (a batch whose end offset the broker misreports, a
failing job), use their own topics.
"""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import pytest_asyncio
import yaml
from aiokafka.structs import ConsumerRecord

from models.settings import TenantSettings
from streams.core.identity import delivery_id
from streams.kafka.settings_file import publish_settings
from streams.ops.config import WorkerConfig
from streams.replay.report import ReplayRequest
from streams.replay.run import REPLAY_HEADER, Replay, ReplayError, run_replay
from streams.replay.window import new_replay_id
from tests.conftest import MakeTopics, TestTopics
from tests.integration.conftest import ModuleTopics, StartWorker, unique_app_id
from tests.integration.worker_process import RETURNHOOK, TEST_RETRY_DELAYS, _environment
from tests.kafka_helpers import committed_offsets, partition_count, produce, read_topic
from tests.receiver import RecordedRequest, RecordingReceiver, Reply

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

SUFFIX = uuid.uuid4().hex[:6]
TENANT_A = f"acme-{SUFFIX}"
TENANT_B = f"beta-{SUFFIX}"
STEP = "WebhookReturnWorkflowStep"
TOKEN = f"tok-{uuid.uuid4().hex}-Rp"  # planted secrets: a hit in any output is a leak
PASSWORD = f"pw-{uuid.uuid4().hex}-Rp"
PARTITIONS = 4


def oid(name: str) -> str:
    return f"o-{name}-{SUFFIX}"


BEFORE = [oid("a0")]  # tenant A, before the window
WINDOW_A = [oid("a1"), oid("a2"), oid("a3")]
WINDOW_B = [oid("b1")]
SHIPPED = oid("a5")  # tenant A, in the window, not a return
AFTER = [oid("a4")]  # tenant A, after the window
INPUTS = len(BEFORE) + len(WINDOW_A) + len(WINDOW_B) + 1 + len(AFTER)

SUCCESS = Reply(
    body={
        "orderActionExecutionResults": [{"actionStatus": "Success"}],
        "orderPatch": {"status": "ReturnApproved", "tags": ["erp-ok"]},
    }
)
DOWN = Reply(status=500, body=b"down")


def event(tenant: str, order_id: str, status: str = "Returned") -> tuple[bytes, bytes]:
    document = {
        "eventId": f"ev-{order_id}-{status}",
        "tenantId": tenant,
        "orderId": order_id,
        "status": status,
        "timestamp": "2026-03-01T10:00:00Z",
        "order": {
            "id": order_id,
            "status": status,
            "marketId": "NOR",
            "returnOrderForms": [{"returnId": "RMA-1"}],
            "errors": [],
        },
    }
    return order_id.encode(), orjson.dumps(document)


def settings(receiver: RecordingReceiver) -> list[dict[str, Any]]:
    step = {"name": STEP, "active": True, "connector": "Webhook"}
    port = receiver.port
    return [
        {
            # A connector with a bearer token from the environment; Error on failure.
            "tenantId": TENANT_A,
            "connectors": [
                {
                    "name": "Webhook",
                    "host": receiver.url("/a"),
                    "bearerToken": "${shared:REPLAY_TOKEN}",
                }
            ],
            "returnWorkflow": [
                {
                    **step,
                    "stopOnError": True,
                    "properties": [{"key": "ErrorStatus", "value": "ReturnFailed"}],
                }
            ],
        },
        {
            # An inline host with credentials in the URL; Warning on failure.
            "tenantId": TENANT_B,
            "returnWorkflow": [
                {
                    **step,
                    "properties": [
                        {"key": "Host", "value": f"http://erp:{PASSWORD}@127.0.0.1:{port}/b"}
                    ],
                }
            ],
        },
    ]


# --- running the CLI -------------------------------------------------------------------------


@dataclass
class CliRun:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def replay_id(self) -> str:
        found = re.search(r"replay id (replay-\S+)", self.stdout)
        assert found, f"no replay id in the output:\n{self}"
        return found.group(1)

    def __str__(self) -> str:
        return (
            f"$ returnhook {' '.join(self.args)}  (exit {self.returncode}, {self.seconds:.1f} s)\n"
            f"--- stdout\n{self.stdout}--- stderr\n{self.stderr}"
        )


def run_cli(*args: str, timeout: float = 60.0) -> CliRun:
    env = _environment({"RETURNHOOK_SHARED_SECRET_REPLAY_TOKEN": TOKEN, "COLUMNS": "200"})
    started = time.monotonic()
    done = subprocess.run(
        [str(RETURNHOOK), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    return CliRun(list(args), done.returncode, done.stdout, done.stderr, time.monotonic() - started)


async def replay_cli(topics: TestTopics, *args: str) -> CliRun:
    base = ["replay", "--broker", topics.bootstrap, "--topics-file", str(topics.path)]
    return await asyncio.to_thread(run_cli, *base, "--retry-delays", TEST_RETRY_DELAYS, *args)


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


# --- the module's run ----------------------------------------------------------------------------


@dataclass
class Story:
    topics: TestTopics
    receiver: RecordingReceiver
    group: str
    window: tuple[str, str]
    original_requests: list[RecordedRequest]
    committed_before: dict[int, int | None]
    committed_after: dict[int, int | None] = field(default_factory=dict)
    dry_run: CliRun | None = None
    requests_after_dry_run: int = 0
    by_tenant: CliRun | None = None
    requests_after_by_tenant: int = 0
    by_order: CliRun | None = None
    patches: list[ConsumerRecord] = field(default_factory=list)
    events: list[ConsumerRecord] = field(default_factory=list)
    dead_letters: list[ConsumerRecord] = field(default_factory=list)

    def requests_of(self, run: CliRun | None) -> list[RecordedRequest]:
        """What the receiver got from one replay: its Idempotency-Keys name the replay id."""
        assert run is not None
        keys = {
            delivery_id(tenant, f"ev-{order}-Returned", 0, run.replay_id)
            for tenant, orders in ((TENANT_A, WINDOW_A + BEFORE + AFTER), (TENANT_B, WINDOW_B))
            for order in orders
        }
        return [r for r in self.receiver.requests if r.header("Idempotency-Key") in keys]


def values(records: Sequence[ConsumerRecord], replay_id: str | None = None) -> list[dict]:
    parsed = [orjson.loads(r.value) for r in records]
    return [v for v in parsed if v.get("replayId") == replay_id]


def header(record: ConsumerRecord) -> str | None:
    found = [v.decode() for k, v in (record.headers or ()) if k == REPLAY_HEADER]
    assert len(found) <= 1
    return found[0] if found else None


async def wait_for_commits(topics: TestTopics, group: str, total: int) -> dict[int, int | None]:
    deadline = time.monotonic() + 30
    while True:
        offsets = await committed_offsets(
            topics.bootstrap, group, topics.catalog.input.name, PARTITIONS
        )
        if sum(v or 0 for v in offsets.values()) >= total or time.monotonic() > deadline:
            return offsets
        await asyncio.sleep(0.5)


async def pause_window_edge() -> str:
    """1 s after the last write, the edge; 1 s more before the next write (broker write times)."""
    await asyncio.sleep(1.0)
    edge = iso(datetime.now(UTC))
    await asyncio.sleep(1.0)
    return edge


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def story_receiver() -> AsyncIterator[RecordingReceiver]:
    async with RecordingReceiver() as started:
        yield started


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def story(
    module_topics: ModuleTopics,
    start_module_worker: StartWorker,
    story_receiver: RecordingReceiver,
) -> Story:
    topics = module_topics(partitions=PARTITIONS)
    receiver = story_receiver
    bootstrap, input_topic = topics.bootstrap, topics.catalog.input.name
    tenants = [TenantSettings.model_validate(s) for s in settings(receiver)]
    await publish_settings(bootstrap, topics.catalog.settings.name, tenants)
    group = unique_app_id("rh-replay")
    await asyncio.to_thread(
        start_module_worker,
        topics,
        app_id=group,
        env={"RETURNHOOK_SHARED_SECRET_REPLAY_TOKEN": TOKEN},
    )

    # 1. Before the window: the receiver answers.
    receiver.route("/a", SUCCESS)
    receiver.route("/b", SUCCESS)
    await produce(bootstrap, input_topic, [event(TENANT_A, o) for o in BEFORE])
    await receiver.wait_for_requests(1, path="/a")
    start = await pause_window_edge()

    # 2. In the window: the receiver is down; every attempt fails.
    receiver.route("/a", DOWN)
    receiver.route("/b", DOWN)
    inside = [event(TENANT_A, o) for o in WINDOW_A] + [event(TENANT_B, o) for o in WINDOW_B]
    inside.append(event(TENANT_A, SHIPPED, status="Shipped"))
    await produce(bootstrap, input_topic, inside)
    await receiver.wait_for_requests(1 + 4 * len(WINDOW_A), path="/a", timeout=30)
    await receiver.wait_for_requests(4 * len(WINDOW_B), path="/b", timeout=30)
    end = await pause_window_edge()

    # 3. After the window: still down.
    await produce(bootstrap, input_topic, [event(TENANT_A, o) for o in AFTER])
    await receiver.wait_for_requests(1 + 4 * len(WINDOW_A) + 4 * len(AFTER), path="/a")

    # 4. The receiver is fixed; the worker has committed everything.
    receiver.route("/a", SUCCESS)
    receiver.route("/b", SUCCESS)
    committed = await wait_for_commits(topics, group, INPUTS)
    run = Story(
        topics=topics,
        receiver=receiver,
        group=group,
        window=(start, end),
        original_requests=list(receiver.requests),
        committed_before=committed,
    )

    # 5. The replays.
    window = ["--from", start, "--to", end]
    run.dry_run = await replay_cli(topics, *window, "--dry-run")
    run.requests_after_dry_run = len(receiver.requests)
    run.by_tenant = await replay_cli(topics, *window, "--tenant", TENANT_A)
    run.requests_after_by_tenant = len(receiver.requests)
    run.by_order = await replay_cli(topics, *window, "--order", WINDOW_A[1], "--order", oid("b1"))
    run.committed_after = await committed_offsets(bootstrap, group, input_topic, PARTITIONS)
    # Originals: every event has an outcome; replays: 3 + 2. Each outcome here comes with a patch.
    outcomes = len(BEFORE) + len(WINDOW_A) + len(WINDOW_B) + len(AFTER) + 3 + 2
    catalog = topics.catalog
    run.patches, run.events, run.dead_letters = await asyncio.gather(
        read_topic(bootstrap, catalog.patches.name, min_count=outcomes, idle=1.0),
        read_topic(bootstrap, catalog.events.name, min_count=outcomes, idle=1.0),
        read_topic(bootstrap, catalog.dead_letters.name, idle=1.0),
    )
    return run


# --- what the worker did in the window ------------------------------------------------------------


async def test_while_the_receiver_failed_the_window_ended_in_error_and_warning(
    story: Story,
) -> None:
    originals = {e["orderId"]: e for e in values(story.events)}
    assert {o: originals[o]["actionStatus"] for o in WINDOW_A + WINDOW_B + AFTER} == {
        **dict.fromkeys(WINDOW_A + AFTER, "Error"),
        **dict.fromkeys(WINDOW_B, "Warning"),
    }
    assert originals[BEFORE[0]]["actionStatus"] == "Success"
    assert all(originals[o]["attempts"] == 4 for o in WINDOW_A + WINDOW_B + AFTER)


# --- the replay --------------------------------------------------------------------------------


async def test_a_replay_of_the_window_succeeds_for_exactly_those_orders(story: Story) -> None:
    run = story.by_tenant
    assert run is not None and run.returncode == 0, str(run)
    rid = run.replay_id
    events = values(story.events, rid)
    patches = values(story.patches, rid)
    assert sorted(e["orderId"] for e in events) == sorted(WINDOW_A)
    assert {e["actionStatus"] for e in events} == {"Success"}
    assert all(e["tenantId"] == TENANT_A and e["attempts"] == 1 for e in events)
    assert sorted(p["orderId"] for p in patches) == sorted(WINDOW_A)
    assert all(p["patch"]["status"] == "ReturnApproved" for p in patches)
    # The summary says so too: 3 Success for tenant A, nothing else.
    assert re.search(rf"{TENANT_A}\s*│\s*3\s*│\s*0\s*│\s*0\s*│\s*0", run.stdout), str(run)
    assert TENANT_B not in run.stdout.split("outcomes by tenant")[1]


async def test_replayed_calls_carry_new_idempotency_keys(story: Story) -> None:
    run = story.by_tenant
    requests = story.requests_of(run)
    assert sorted(r.json()["Value"]["id"] for r in requests) == sorted(WINDOW_A)
    assert {r.path for r in requests} == {"/a"}
    original_keys = {r.header("Idempotency-Key") for r in story.original_requests}
    replayed_keys = {r.header("Idempotency-Key") for r in requests}
    assert len(replayed_keys) == len(WINDOW_A)
    assert not replayed_keys & original_keys
    assert all(r.header("Authorization") == f"Bearer {TOKEN}" for r in requests)
    # Two replays of one event differ from each other too.
    [again] = [r for r in story.requests_of(story.by_order) if r.path == "/a"]
    assert again.header("Idempotency-Key") not in replayed_keys | original_keys


async def test_replayed_records_carry_the_replay_id_and_the_header(story: Story) -> None:
    assert story.by_tenant is not None and story.by_order is not None
    by_tenant, by_order = story.by_tenant.replay_id, story.by_order.replay_id
    original_ids = {v["id"] for v in values(story.events) + values(story.patches)}
    # Per replay id (in the value and in the header alike), how many events and patches.
    found: dict[tuple[str | None, str | None], list[str]] = {}
    for topic, records in (("events", story.events), ("patches", story.patches)):
        for record in records:
            value = orjson.loads(record.value)
            assert header(record) == value.get("replayId"), value
            found.setdefault((value.get("replayId"), header(record)), []).append(topic)
            if value.get("replayId"):
                assert value["id"] not in original_ids
                assert record.key == value["orderId"].encode()
    originals = len(BEFORE) + len(WINDOW_A) + len(WINDOW_B) + len(AFTER)
    assert {key: sorted(topics) for key, topics in found.items()} == {
        (None, None): ["events"] * originals + ["patches"] * originals,
        (by_tenant, by_tenant): ["events"] * len(WINDOW_A) + ["patches"] * len(WINDOW_A),
        (by_order, by_order): ["events"] * 2 + ["patches"] * 2,
    }
    assert story.dead_letters == []


async def test_other_tenants_and_times_outside_the_window_are_not_replayed(story: Story) -> None:
    # Every request the receiver got while `replay --tenant A` ran, whatever its key: a call
    # for the Shipped order would have an event id (and so a key) of its own.
    requests = story.receiver.requests[
        story.requests_after_dry_run : story.requests_after_by_tenant
    ]
    called = [r.json()["Value"]["id"] for r in requests]
    assert not set(called) & set(BEFORE + AFTER + WINDOW_B + [SHIPPED]), called
    assert sorted(called) == sorted(WINDOW_A)
    run = story.by_tenant
    assert run is not None
    # Read: 1 Shipped event and B's event skipped as filtered or not a return.
    assert "1 not a return status" in run.stdout and "1 other tenants/orders" in run.stdout


async def test_order_filter_replays_only_the_named_orders(story: Story) -> None:
    run = story.by_order
    assert run is not None and run.returncode == 0, str(run)
    requests = story.requests_of(run)
    assert sorted((r.path, r.json()["Value"]["id"]) for r in requests) == [
        ("/a", WINDOW_A[1]),
        ("/b", WINDOW_B[0]),
    ]
    events = values(story.events, run.replay_id)
    assert sorted((e["orderId"], e["actionStatus"]) for e in events) == sorted(
        [(WINDOW_A[1], "Success"), (WINDOW_B[0], "Success")]
    )
    # B's credentials in the URL went as Basic auth, not into any output.
    [b_request] = [r for r in requests if r.path == "/b"]
    assert (b_request.header("Authorization") or "").startswith("Basic ")


async def test_dry_run_calls_nothing_produces_nothing_and_shows_the_plan(story: Story) -> None:
    run = story.dry_run
    assert run is not None and run.returncode == 0, str(run)
    assert story.requests_after_dry_run == len(story.original_requests)
    rids = {orjson.loads(r.value).get("replayId") for r in story.events + story.patches}
    assert run.replay_id not in rids
    out = run.stdout
    assert f"tenant {TENANT_A}: 3 event(s), 3 order(s), 3 call(s)" in out, str(run)
    assert f"tenant {TENANT_B}: 1 event(s), 1 order(s), 1 call(s)" in out, str(run)
    assert f"step 0 {STEP} → {story.receiver.url('/a')}  (3 event(s))" in out
    assert f"step 0 {STEP} → http://***@127.0.0.1:{story.receiver.port}/b" in out
    for order in WINDOW_A + WINDOW_B:
        assert order in out
    for order in BEFORE + AFTER + [SHIPPED]:
        assert order not in out
    assert "total: 2 tenant(s), 4 order(s), 4 event(s), 4 call(s)" in out
    for secret in (TOKEN, PASSWORD, "Bearer", "Authorization"):
        assert secret not in out + run.stderr


async def test_the_live_groups_committed_offsets_do_not_move(story: Story) -> None:
    assert sum(v or 0 for v in story.committed_before.values()) == INPUTS
    assert story.committed_after == story.committed_before


# --- clear errors ----------------------------------------------------------------------------


def one_line_error(run: CliRun, pattern: str) -> None:
    assert run.returncode == 1, str(run)
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and re.search(pattern, lines[0]), str(run)


async def test_an_unknown_topic_is_an_error_and_is_not_created(
    make_topics: MakeTopics, tmp_path: Path
) -> None:
    topics = make_topics(partitions=1)
    missing = f"nowhere-{uuid.uuid4().hex[:8]}"
    document = yaml.safe_load(topics.path.read_text())
    document["topics"]["input"]["name"] = missing
    path = tmp_path / "missing-input.yaml"
    path.write_text(yaml.safe_dump(document))
    base = ["replay", "--broker", topics.bootstrap, "--topics-file", str(path)]
    run = await asyncio.to_thread(run_cli, *base, "--from", "1h", "--dry-run")
    one_line_error(run, rf"unknown topic on .*: {missing} \(input\)")
    with pytest.raises(LookupError):
        await partition_count(topics.bootstrap, missing)


async def test_a_window_without_records_is_an_error(make_topics: MakeTopics) -> None:
    topics = make_topics(partitions=2)
    run = await replay_cli(topics, "--from", "10m")
    one_line_error(run, r"no records on order-status-changed-\S+ since ")
    # Records exist, but all after --to.
    await produce(topics.bootstrap, topics.catalog.input.name, [event(TENANT_A, oid("late"))])
    run = await replay_cli(topics, "--from", "10m", "--to", "5m")
    one_line_error(run, r"no records on order-status-changed-\S+ between ")


async def test_to_before_from_is_an_error() -> None:
    run = await asyncio.to_thread(
        run_cli, "replay", "--broker", "127.0.0.1:1", "--from", "1h", "--to", "2h"
    )
    one_line_error(run, r"--to \S+ is not after --from \S+")


async def test_an_unreachable_broker_is_an_error_in_bounded_time() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    run = await asyncio.to_thread(
        run_cli, "replay", "--broker", f"127.0.0.1:{port}", "--from", "1h", "--connect-timeout", "5"
    )
    one_line_error(run, rf"cannot connect to Kafka at 127.0.0.1:{port} .*connection refused")
    assert run.seconds < 15


# --- the engine in-process: end offsets and failures -------------------------------------------


def in_process_request(topics: TestTopics, **overrides: Any) -> ReplayRequest:
    now = datetime.now(UTC)
    options: dict[str, Any] = {
        "bootstrap": topics.bootstrap,
        "catalog": topics.catalog,
        "start": now - timedelta(minutes=5),
        "end": None,
        "replay_id": new_replay_id(now),
        "config": WorkerConfig(broker=topics.bootstrap, retry_delays=(0.1,)),
        "env": {"RETURNHOOK_SHARED_SECRET_REPLAY_TOKEN": TOKEN},
        **overrides,
    }
    return ReplayRequest(**options)


async def test_a_batch_the_broker_misreports_is_read_to_its_end(
    make_topics: MakeTopics, receiver: RecordingReceiver
) -> None:
    """One batch of 60 records: the embedded broker's end offset says 2, the highwater 60."""
    topics = make_topics(partitions=1)
    await publish_settings(
        topics.bootstrap,
        topics.catalog.settings.name,
        [TenantSettings.model_validate(s) for s in settings(receiver)],
    )
    orders = [oid(f"batch-{n}") for n in range(60)]
    await produce(topics.bootstrap, topics.catalog.input.name, [event(TENANT_A, o) for o in orders])
    result = await run_replay(in_process_request(topics, dry_run=True))
    assert result.stats.total == result.stats.read == len(orders)
    assert sorted(result.plan[TENANT_A].orders) == sorted(orders)
    assert receiver.requests == []


async def test_a_failing_job_stops_the_replay_with_a_clear_error(
    make_topics: MakeTopics, receiver: RecordingReceiver
) -> None:
    """With a window of one event, a job that never finishes must not leave intake waiting."""
    topics = make_topics(partitions=1)
    await publish_settings(
        topics.bootstrap,
        topics.catalog.settings.name,
        [TenantSettings.model_validate(s) for s in settings(receiver)],
    )
    receiver.route("/a", SUCCESS)
    orders = [oid(f"fail-{n}") for n in range(5)]
    await produce(topics.bootstrap, topics.catalog.input.name, [event(TENANT_A, o) for o in orders])
    config = WorkerConfig(broker=topics.bootstrap, max_uncommitted=1)
    replay = Replay(in_process_request(topics, config=config))

    async def broken(request: Any) -> Any:
        raise RuntimeError("the disk is on fire")

    replay._deliver = broken  # type: ignore[method-assign]
    async with asyncio.timeout(20):
        with pytest.raises(
            ReplayError, match=r"stopped after 0 of 5 records: .*the disk is on fire"
        ):
            await replay.run()
    patches = await read_topic(topics.bootstrap, topics.catalog.patches.name, idle=0.5)
    assert patches == []
