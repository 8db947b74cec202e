"""Issue 15, "What it must show": finished work is never redone when partitions move.

A failing tenant's events wait out their retries and hold their partitions' commit points while
later events finish. Each test has its own topics, tenants and consumer group; the receiver runs
in the test's event loop, so worker starts and stops go through `asyncio.to_thread`.

- Join: one worker, a healthy and a failing tenant; a second worker joins: no healthy order's
  webhook is called twice, and no failing delivery repeats or exceeds its attempt numbers.
- Crash: SIGKILL of the only worker after its last progress record: the healthy orders redone
  are only ones that record did not call finished.
- Moved retry: a failing delivery whose worker stops (SIGTERM) after attempt 2 gets attempts
  3 and 4 from the next owner: 4 in all, `X-Delivery-Count` 1, 2, 3, 4.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections import Counter, defaultdict
from typing import Any

import orjson
import pytest

from streams.core.progress import PartitionProgress, decode
from tests.conftest import MakeTopics, TestTopics
from tests.integration.conftest import StartWorker, unique_app_id
from tests.integration.traffic import (
    Producer,
    TopicWatcher,
    assigned_partitions,
    ids_seen,
    outcome_id,
    publish,
    request_order,
    return_event,
    settings_document,
)
from tests.integration.worker_process import WorkerProcess
from tests.kafka_helpers import read_topic
from tests.receiver import RecordedRequest, RecordingReceiver, Reply

pytestmark = pytest.mark.integration

READY_TIMEOUT = 60.0


def _names(label: str) -> tuple[str, str]:
    suffix = uuid.uuid4().hex[:6]
    return f"{label}-{suffix}", f"o-{label}-{suffix}"


def counts_by_order(requests: list[RecordedRequest]) -> dict[str, list[int]]:
    """Each order's X-Delivery-Count values in the order the receiver got them."""
    seen: dict[str, list[int]] = defaultdict(list)
    for request in sorted(requests, key=lambda r: r.received_at):
        seen[request_order(request)].append(request.attempt or 0)
    return dict(seen)


def called_twice(requests: list[RecordedRequest]) -> dict[str, int]:
    calls = Counter(request_order(r) for r in requests)
    return {order: n for order, n in calls.items() if n > 1}


async def trickle(
    bootstrap: str,
    topic: str,
    events: list[tuple[str, str]],
    *,
    per_tick: int,
    tick_s: float,
    go_on: asyncio.Event | None = None,
) -> None:
    """(tenant, order) events, `per_tick` every `tick_s`; pauses while `go_on` is cleared."""
    async with Producer(bootstrap) as producer:
        for start in range(0, len(events), per_tick):
            if go_on is not None:
                await go_on.wait()
            for tenant, order in events[start : start + per_tick]:
                await producer.send(topic, order, return_event(tenant, order, 0))
            await producer.flush()
            await asyncio.sleep(tick_s)


def mixed_events(healthy: str, failing: str, count: int, every: int) -> list[tuple[str, str]]:
    """`count` new orders, one in `every` for the failing tenant."""
    (h_tenant, h_prefix), (f_tenant, f_prefix) = _names(healthy), _names(failing)
    return [
        (f_tenant, f"{f_prefix}-{n}") if n % every == 0 else (h_tenant, f"{h_prefix}-{n}")
        for n in range(count)
    ]


async def read_progress(topics: TestTopics) -> list[tuple[float, bytes, PartitionProgress]]:
    """Every progress record so far: (write time as seen by the broker, key, record)."""
    records = await read_topic(topics.bootstrap, topics.catalog.progress.name, idle=0.5)
    out = []
    for record in records:
        decoded = decode(record.value)
        assert isinstance(decoded, PartitionProgress), decoded
        out.append((record.timestamp / 1000, record.key, decoded))
    return out


async def input_offsets(topics: TestTopics, count: int) -> dict[str, tuple[int, int]]:
    """Order id -> (partition, offset) of its one input record."""
    records = await read_topic(topics.bootstrap, topics.catalog.input.name, min_count=count)
    return {orjson.loads(r.value)["orderId"]: (r.partition, r.offset) for r in records}


async def publish_tenants(
    topics: TestTopics, receiver: RecordingReceiver, events: list[tuple[str, str]]
) -> tuple[str, str]:
    healthy = next(t for t, _ in events if t.startswith("healthy"))
    failing = next(t for t, _ in events if t.startswith("failing"))
    receiver.route("/healthy", Reply(status=200, delay=0.02))
    receiver.route("/failing", Reply(status=500))
    await publish(
        topics.bootstrap,
        topics,
        [
            settings_document(healthy, receiver.url("/healthy")),
            settings_document(failing, receiver.url("/failing")),
        ],
    )
    return healthy, failing


def expected_outcomes(events: list[tuple[str, str]]) -> set[str]:
    return {outcome_id(tenant, order, 0) for tenant, order in events}


def assert_attempts_never_repeat(receiver: RecordingReceiver, failing_orders: set[str]) -> None:
    """Every failing delivery: X-Delivery-Count strictly rising, never beyond 4."""
    counts = counts_by_order(receiver.requests_for("/failing"))
    assert set(counts) == failing_orders
    bad = {o: c for o, c in counts.items() if c != sorted(set(c)) or max(c) > 4}
    assert not bad, f"attempt numbers repeated or beyond the promise: {bad}"
    incomplete = {o: c for o, c in counts.items() if c[-1] != 4}
    assert not incomplete, f"failing deliveries that did not reach attempt 4: {incomplete}"


# --- join ----------------------------------------------------------------------------------------


async def test_a_joining_worker_redoes_no_finished_work(
    make_topics: MakeTopics, start_worker: StartWorker, receiver: RecordingReceiver
) -> None:
    topics = make_topics(partitions=4)
    bootstrap, catalog = topics.bootstrap, topics.catalog
    events = mixed_events("healthy", "failing", count=480, every=20)
    healthy, _ = await publish_tenants(topics, receiver, events)
    app_id = unique_app_id()
    opts: dict[str, Any] = {"app_id": app_id, "retry_delays": "1,2,4"}
    first = await asyncio.to_thread(start_worker, topics, ready_timeout=READY_TIMEOUT, **opts)
    async with TopicWatcher(bootstrap, catalog.events.name) as outcomes:
        # 40 events/s: the failing events' 7 s of retries hold every partition's commit point.
        producing = asyncio.create_task(
            trickle(bootstrap, catalog.input.name, events, per_tick=4, tick_s=0.1)
        )
        await receiver.wait_for_requests(150, path="/healthy", timeout=30)
        second = await asyncio.to_thread(start_worker, topics, ready_timeout=READY_TIMEOUT, **opts)
        await producing
        await outcomes.wait_until(
            lambda values: expected_outcomes(events) <= ids_seen(values),
            timeout=90,
            what="all outcomes",
        )
    healthy_requests = [
        r for r in receiver.requests_for("/healthy") if request_order(r).startswith("o-healthy")
    ]
    twice = called_twice(healthy_requests)
    moved = assigned_partitions(second, catalog.input.name)
    print(
        f"\njoin: {len(healthy_requests)} healthy calls for "
        f"{sum(1 for t, _ in events if t == healthy)} orders; called twice: {len(twice)}; "
        f"partitions moved to the second worker: {sorted(moved)}"
    )
    assert moved, "the join moved no partition"
    assert not twice, f"healthy orders called more than once: {twice}"
    failing_orders = {o for t, o in events if t != healthy}
    assert_attempts_never_repeat(receiver, failing_orders)
    assert "the previous owner finished" in second.log_text()
    assert first.running and second.running


# --- crash ---------------------------------------------------------------------------------------


async def test_after_a_sigkill_only_work_the_last_progress_record_missed_is_redone(
    make_topics: MakeTopics, start_worker: StartWorker, receiver: RecordingReceiver
) -> None:
    topics = make_topics(partitions=4)
    bootstrap, catalog = topics.bootstrap, topics.catalog
    events = mixed_events("healthy", "failing", count=360, every=20)
    healthy, _ = await publish_tenants(topics, receiver, events)
    app_id = unique_app_id()
    opts: dict[str, Any] = {"app_id": app_id, "retry_delays": "1,2,4"}
    victim = await asyncio.to_thread(start_worker, topics, ready_timeout=READY_TIMEOUT, **opts)
    async with (
        TopicWatcher(bootstrap, catalog.events.name) as outcomes,
        TopicWatcher(bootstrap, catalog.progress.name) as progress,
    ):
        producing = asyncio.create_task(
            trickle(bootstrap, catalog.input.name, events, per_tick=4, tick_s=0.1)
        )
        await receiver.wait_for_requests(150, path="/healthy", timeout=30)
        # Right after a fresh record that knows of finished work beyond the commit point.
        seen = len(progress.values)
        await progress.wait_until(
            lambda values: any(v.get("done") for v in values[seen:]),
            timeout=15,
            what="a progress record with finished offsets beyond the commit",
        )
        victim.kill()
        killed_at = time.monotonic()
        calls_at_kill = len(receiver.requests_for("/healthy"))
        await producing
        last = {
            int(record.key.decode().rsplit("|", 1)[1]): decode(record.value)
            for record in progress.records
        }
        successor = await asyncio.to_thread(
            start_worker, topics, ready_timeout=READY_TIMEOUT, **opts
        )
        await outcomes.wait_until(
            lambda values: expected_outcomes(events) <= ids_seen(values),
            timeout=90,
            what="all outcomes",
        )
    where = await input_offsets(topics, len(events))
    healthy_requests = [
        r for r in receiver.requests_for("/healthy") if request_order(r).startswith("o-healthy")
    ]
    twice = called_twice(healthy_requests)
    covered = {
        order
        for order, (partition, offset) in where.items()
        if isinstance(last.get(partition), PartitionProgress)
        and last[partition].is_finished(offset)  # type: ignore[union-attr]
    }
    redone_covered = sorted(set(twice) & covered)
    print(
        f"\ncrash: SIGKILL {time.monotonic() - killed_at:.1f} s before the end, after "
        f"{calls_at_kill} healthy calls; {len(covered)} orders finished per the last records; "
        f"{len(twice)} healthy orders called twice, {len(redone_covered)} of them covered"
    )
    assert not redone_covered, f"redone although the last progress record had them: {twice}"
    # What was redone finished after the last record: at most what the victim did after it.
    assert len(twice) <= calls_at_kill - sum(1 for o in covered if o.startswith("o-healthy"))
    assert "the previous owner finished" in successor.log_text()
    assert_attempts_never_repeat_after_crash(receiver, {o for t, o in events if t != healthy})


def assert_attempts_never_repeat_after_crash(
    receiver: RecordingReceiver, failing_orders: set[str]
) -> None:
    """After a SIGKILL an attempt made since the last record may be made again (same number),
    but the numbers never go back further and never pass 4."""
    counts = counts_by_order(receiver.requests_for("/failing"))
    assert set(counts) == failing_orders
    for order, seq in counts.items():
        assert max(seq) <= 4, (order, seq)
        assert all(b >= a for a, b in itertools.pairwise(seq)), (order, seq)
        assert seq[-1] == 4, (order, seq)


# --- a retry moved mid-schedule ------------------------------------------------------------------


async def test_a_moved_retry_keeps_its_attempt_numbers_and_due_time(
    make_topics: MakeTopics, start_worker: StartWorker, receiver: RecordingReceiver
) -> None:
    topics = make_topics(partitions=1)
    bootstrap, catalog = topics.bootstrap, topics.catalog
    tenant, prefix = _names("moved")
    order = f"{prefix}-1"
    receiver.route("/failing", Reply(status=500))
    await publish(bootstrap, topics, [settings_document(tenant, receiver.url("/failing"))])
    app_id = unique_app_id()
    opts: dict[str, Any] = {"app_id": app_id, "retry_delays": "1,4,4"}
    workers: list[WorkerProcess] = [start_worker(topics, wait=False, **opts) for _ in range(2)]
    await asyncio.gather(*(asyncio.to_thread(w.wait_ready, READY_TIMEOUT) for w in workers))
    deadline = time.monotonic() + 20
    while not (owners := [w for w in workers if assigned_partitions(w, catalog.input.name)]):
        assert time.monotonic() < deadline, "nobody owns the partition"
        await asyncio.sleep(0.2)
    (owner,) = owners
    (other,) = [w for w in workers if w is not owner]
    async with TopicWatcher(bootstrap, catalog.events.name) as outcomes:
        async with Producer(bootstrap) as producer:
            await producer.send(catalog.input.name, order, return_event(tenant, order, 0))
        await receiver.wait_for_requests(2, path="/failing", timeout=30)
        code = await asyncio.to_thread(owner.stop)
        stopped_at = time.monotonic()
        await receiver.wait_for_requests(4, path="/failing", timeout=60)
        await outcomes.wait_until(
            lambda values: outcome_id(tenant, order, 0) in ids_seen(values),
            timeout=30,
            what="the outcome",
        )
        mine = [v for v in outcomes.values if v.get("tenantId") == tenant]
    requests = sorted(receiver.requests_for("/failing"), key=lambda r: r.received_at)
    counts = [r.attempt for r in requests]
    print(
        f"\nmoved retry: attempts {counts} at "
        + ", ".join(f"{r.received_at - requests[0].received_at:.1f} s" for r in requests)
        + f"; first worker stopped {stopped_at - requests[0].received_at:.1f} s in (exit {code})"
    )
    assert code == 0
    assert counts == [1, 2, 3, 4]
    assert {r.header("X-Max-Delivery-Count") for r in requests} == {"4"}
    assert requests[2].received_at > stopped_at - 1.0, "attempt 3 came from the first worker"
    # Not before its due time: 4 s after attempt 2 (the receiver's clock; generous margin).
    assert requests[2].received_at - requests[1].received_at > 3.5
    assert len(mine) == 1 and mine[0]["attempts"] == 4 and mine[0]["actionStatus"] != "Success"
    assert "the previous owner finished" in other.log_text()
