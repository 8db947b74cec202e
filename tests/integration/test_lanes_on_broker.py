"""Issue 3, "What it must show": keyed lanes on the real broker with real worker processes.

Each test has its own topics, tenant and consumer group. The receiver runs in the test's event
loop, so nothing here blocks it: worker starts and stops go through `asyncio.to_thread`.

- Order: per-order offset order and one request at a time per order, under random latencies.
- Concurrency: 1 000 orders on one partition run hundreds of webhook calls at once.
- Isolation: a slow tenant's endpoint (per-host limit) does not hold up another tenant.
- Crash: SIGKILL of one of three workers mid-stream loses nothing; commits are exact.
- Rebalance: a worker joins and another leaves under traffic; nothing lost, no order on two
  workers at once.
- Shutdown: SIGTERM with intake paused by a full window drains, commits and exits.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter, defaultdict
from typing import Any

import orjson
import pytest

from tests.conftest import MakeTopics, TestTopics
from tests.integration.conftest import StartWorker, unique_app_id
from tests.integration.traffic import (
    Producer,
    TopicWatcher,
    assigned_partitions,
    ids_seen,
    outcome_id,
    publish,
    records_per_partition,
    request_order,
    request_seq,
    return_event,
    settings_document,
    wait_committed,
)
from tests.integration.worker_process import WorkerProcess
from tests.kafka_helpers import committed_offsets, produce, read_topic
from tests.receiver import RecordedRequest, RecordingReceiver, Reply

pytestmark = pytest.mark.integration

READY_TIMEOUT = 60.0  # several workers starting at once on two shared cores


def _names(label: str) -> tuple[str, str]:
    """A tenant and an order-id prefix unique to this run."""
    suffix = uuid.uuid4().hex[:6]
    return f"{label}-{suffix}", f"o-{label}-{suffix}"


def random_latency(low: float, high: float, seed: int) -> Any:
    rng = random.Random(seed)
    return lambda _request: Reply(status=200, delay=rng.uniform(low, high))


async def start_workers(
    start_worker: StartWorker, topics: TestTopics, count: int, **opts: Any
) -> list[WorkerProcess]:
    """Starts `count` workers at once and waits until every one has its partitions."""
    workers = [start_worker(topics, wait=False, **opts) for _ in range(count)]
    await asyncio.gather(*(asyncio.to_thread(w.wait_ready, READY_TIMEOUT) for w in workers))
    return workers


def sequences_by_order(requests: list[RecordedRequest]) -> dict[str, list[int]]:
    """Each order's `seq` values in the order the receiver got them."""
    seen: dict[str, list[int]] = defaultdict(list)
    for request in sorted(requests, key=lambda r: r.received_at):
        seen[request_order(request)].append(request_seq(request))
    return dict(seen)


def _explain_missing(
    values: list[dict], tenant: str, partition_of: dict[str, int], per_order: int
) -> str:
    """Which (order, seq, partition) have no outcome yet, for a failure message."""
    seen = ids_seen(values)
    missing = [
        (oid, seq, partition)
        for oid, partition in partition_of.items()
        for seq in range(per_order)
        if outcome_id(tenant, oid, seq) not in seen
    ]
    return f"{len(missing)} outcome(s) missing: {missing[:40]}"


def assert_no_late_events(workers: list[WorkerProcess]) -> None:
    """After every assignment faust delivers each partition once, in offset order, from the
    committed offset (streams/worker/seek_first_recovery.py): no worker ever sees an offset late."""
    for worker in workers:
        late = [line for line in worker.log_text().splitlines() if "after later offsets" in line]
        assert not late, f"{worker.log_path}: {late[:3]}"


def first_occurrences(seqs: list[int]) -> list[int]:
    return list(dict.fromkeys(seqs))


def assert_one_at_a_time(receiver: RecordingReceiver) -> None:
    peaks = receiver.max_concurrent_by(request_order)
    overlapping = {order: peak for order, peak in peaks.items() if peak > 1}
    assert not overlapping, f"orders with overlapping requests: {overlapping}"


def assert_same_content(values: list[dict], tenant: str) -> int:
    """Duplicates (redeliveries) carry the same id and content but for the measured duration."""
    by_id: dict[str, list[dict]] = defaultdict(list)
    for value in values:
        if value.get("tenantId") == tenant:
            by_id[value["id"]].append({k: v for k, v in value.items() if k != "durationMs"})
    duplicates = 0
    for copies in by_id.values():
        duplicates += len(copies) - 1
        assert all(copy == copies[0] for copy in copies), copies
    return duplicates


# --- order ---------------------------------------------------------------------------------------


async def test_each_order_is_handled_in_offset_order_one_call_at_a_time(
    make_topics: MakeTopics, start_worker: StartWorker, receiver: RecordingReceiver
) -> None:
    orders, per_order = 50, 10
    topics = make_topics(partitions=4)
    bootstrap, catalog = topics.bootstrap, topics.catalog
    tenant, prefix = _names("order")
    receiver.route("/order", random_latency(0.0, 0.2, seed=3))
    await publish(bootstrap, topics, [settings_document(tenant, receiver.url("/order"))])
    await asyncio.to_thread(start_worker, topics, ready_timeout=READY_TIMEOUT)

    order_ids = [f"{prefix}-{n}" for n in range(orders)]
    # Interleaved: every order's next event comes after one event of each other order.
    records = [
        (oid.encode(), return_event(tenant, oid, seq))
        for seq in range(per_order)
        for oid in order_ids
    ]
    expected = {outcome_id(tenant, oid, seq) for oid in order_ids for seq in range(per_order)}
    async with TopicWatcher(bootstrap, catalog.events.name) as events:
        await produce(bootstrap, catalog.input.name, records)
        await events.wait_until(
            lambda values: expected <= ids_seen(values), timeout=60, what="all outcomes"
        )
    # What offset order is for each order: read back, not assumed from the producing order.
    inputs = await read_topic(bootstrap, catalog.input.name, min_count=len(records), idle=0.5)
    in_log: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
    for record in inputs:
        event = orjson.loads(record.value)
        in_log[event["orderId"]].append((record.partition, record.offset, event["order"]["seq"]))
    offset_order = {oid: [seq for _, _, seq in sorted(entries)] for oid, entries in in_log.items()}
    assert {len({p for p, _, _ in e}) for e in in_log.values()} == {1}  # keyed: one partition

    requests = receiver.requests_for("/order")
    assert len(requests) == orders * per_order, "one request per event, no retries, no repeats"
    assert sequences_by_order(requests) == offset_order
    assert_one_at_a_time(receiver)
    # And orders did run side by side: not one long queue.
    assert receiver.max_concurrent > 1
    print(f"\norder: peak concurrency {receiver.max_concurrent}")


# --- concurrency ---------------------------------------------------------------------------------


async def test_one_partition_runs_hundreds_of_calls_at_once(
    make_topics: MakeTopics, start_worker: StartWorker, receiver: RecordingReceiver
) -> None:
    """No answer until AT_ONCE calls wait at the receiver together: proven, not timed.

    A worker that runs fewer calls at once from one partition never gets that far (the wait
    fails, however fast the machine); one that does gets there however slow the machine is.
    """
    count, at_once = 1000, 200
    topics = make_topics(partitions=1)
    bootstrap, catalog = topics.bootstrap, topics.catalog
    tenant, prefix = _names("conc")
    gate = asyncio.Event()
    receiver.route("/slow", Reply(status=200, hold=gate))
    await publish(bootstrap, topics, [settings_document(tenant, receiver.url("/slow"))])
    app_id = unique_app_id()
    await asyncio.to_thread(
        start_worker,
        topics,
        app_id=app_id,
        ready_timeout=READY_TIMEOUT,
        # One host here: the default per-host limit (64) would be the ceiling, not the lanes.
        env={"RETURNHOOK_MAX_IN_FLIGHT_PER_HOST": "256"},
    )
    order_ids = [f"{prefix}-{n}" for n in range(count)]
    records = [(oid.encode(), return_event(tenant, oid, 0)) for oid in order_ids]
    expected = {outcome_id(tenant, oid, 0) for oid in order_ids}
    async with TopicWatcher(bootstrap, catalog.events.name) as events:
        await produce(bootstrap, catalog.input.name, records, partition=0)
        try:
            # Under the webhook timeout (30 s): a held call must not time out and be retried.
            await receiver.wait_for_requests(at_once, path="/slow", timeout=25)
            waiting = receiver.in_flight
            answered = [r for r in receiver.requests_for("/slow") if r.status is not None]
        finally:
            gate.set()
        await events.wait_until(
            lambda values: expected <= ids_seen(values), timeout=60, what="all outcomes"
        )
    print(f"\nconcurrency: {waiting} requests held at once; peak {receiver.max_concurrent}")
    assert answered == [] and waiting >= at_once
    # Each a first attempt of its own order: no call timed out while held and came back.
    requests = receiver.requests_for("/slow")
    assert len(requests) == count and {r.attempt for r in requests} == {1}
    assert {request_order(r) for r in requests} == set(order_ids)
    await wait_committed(bootstrap, app_id, catalog.input.name, {0: count}, timeout=30)


# --- isolation -----------------------------------------------------------------------------------


async def test_a_slow_tenant_does_not_hold_up_another(
    make_topics: MakeTopics, start_worker: StartWorker, receiver: RecordingReceiver
) -> None:
    slow_count, fast_count = 300, 50  # more slow events than calls a worker runs at once (256)
    topics = make_topics(partitions=1)
    bootstrap, catalog = topics.bootstrap, topics.catalog
    tenant_a, prefix_a = _names("slow")
    tenant_b, prefix_b = _names("fast")
    receiver.route("/slow", Reply(status=200, delay=5.0))
    async with (
        RecordingReceiver() as other_host
    ):  # its own origin: the per-host limit is per origin
        other_host.route("/fast", Reply(status=200))
        await publish(
            bootstrap,
            topics,
            [
                settings_document(tenant_a, receiver.url("/slow")),
                settings_document(tenant_b, other_host.url("/fast")),
            ],
        )
        worker = await asyncio.to_thread(start_worker, topics, ready_timeout=READY_TIMEOUT)
        # All on one partition, tenant A's events first: B's queue behind them in the log.
        slow = [f"{prefix_a}-{n}" for n in range(slow_count)]
        fast = [f"{prefix_b}-{n}" for n in range(fast_count)]
        records = [(oid.encode(), return_event(tenant_a, oid, 0)) for oid in slow] + [
            (oid.encode(), return_event(tenant_b, oid, 0)) for oid in fast
        ]
        expected_b = {outcome_id(tenant_b, oid, 0) for oid in fast}
        async with TopicWatcher(bootstrap, catalog.events.name) as events:
            await produce(bootstrap, catalog.input.name, records, partition=0)
            await events.wait_until(
                lambda values: expected_b <= ids_seen(values, tenant_b),
                timeout=30,
                what="tenant B's outcomes",
            )
            observed_at = time.monotonic()
            a_requests = receiver.requests_for("/slow")
            a_done = [r for r in a_requests if r.finished_at is not None]
            b_requests = other_host.requests_for("/fast")
            b_outcomes = [v for v in events.values if v.get("tenantId") == tenant_b]
            a_outcomes = [v for v in events.values if v.get("tenantId") == tenant_a]
        first_a = min(r.received_at for r in a_requests)
        print(
            f"\nisolation: B's {fast_count} outcomes all read {observed_at - first_a:.2f} s after "
            f"A's first call; A calls in flight then: {len(a_requests) - len(a_done)}"
        )
        assert a_requests, "tenant A's calls never started"
        assert a_done == [], "tenant A's first calls should still be running"
        assert a_outcomes == []
        assert len(b_requests) == fast_count
        assert {v["actionStatus"] for v in b_outcomes} == {"Success"}
        last_b = max(r.finished_at or float("inf") for r in b_requests)
        assert last_b < first_a + 5.0  # B's calls were answered before A's first one could be
        # The per-host limit, not the worker's, capped tenant A.
        assert len(a_requests) <= 64
        assert worker.running


# --- crash ---------------------------------------------------------------------------------------


async def test_sigkill_of_one_of_three_workers_loses_nothing(
    make_topics: MakeTopics, start_worker: StartWorker, receiver: RecordingReceiver
) -> None:
    partitions, orders, per_order = 12, 120, 5
    topics = make_topics(partitions=partitions)
    bootstrap, catalog = topics.bootstrap, topics.catalog
    input_topic = catalog.input.name
    tenant, prefix = _names("crash")
    receiver.route("/crash", random_latency(0.05, 0.15, seed=7))
    await publish(bootstrap, topics, [settings_document(tenant, receiver.url("/crash"))])
    app_id = unique_app_id()
    workers = await start_workers(start_worker, topics, 3, app_id=app_id)

    order_ids = [f"{prefix}-{n}" for n in range(orders)]
    partition_of = {oid: n % partitions for n, oid in enumerate(order_ids)}
    # Wait for the group to settle with the victim owning something.
    deadline = time.monotonic() + 20
    while True:
        owned = {w: assigned_partitions(w, input_topic) for w in workers}
        if sum(len(p) for p in owned.values()) == partitions and all(owned.values()):
            break
        assert time.monotonic() < deadline, f"the group did not settle: {owned}"
        await asyncio.sleep(0.2)
    victim = workers[0]
    victim_partitions = owned[victim]
    total = orders * per_order
    expected = {outcome_id(tenant, oid, seq) for oid in order_ids for seq in range(per_order)}

    async def trickle() -> None:
        """600 events in chunks of 20 every 0.1 s, each order's events in turn."""
        stream = [(oid, seq) for seq in range(per_order) for oid in order_ids]
        async with Producer(bootstrap) as producer:
            for start in range(0, len(stream), 20):
                for oid, seq in stream[start : start + 20]:
                    await producer.send(
                        input_topic,
                        oid,
                        return_event(tenant, oid, seq),
                        partition=partition_of[oid],
                    )
                await producer.flush()
                await asyncio.sleep(0.1)

    def victim_calls_in_flight() -> list[RecordedRequest]:
        return [
            r
            for r in receiver.requests_for("/crash")
            if r.finished_at is None and partition_of[request_order(r)] in victim_partitions
        ]

    async with TopicWatcher(bootstrap, catalog.events.name) as events:
        producing = asyncio.create_task(trickle())
        # Mid-stream: a third of the calls made, and some of the victim's running right now.
        deadline = time.monotonic() + 30
        while len(receiver.requests_for("/crash")) < total // 3 or not victim_calls_in_flight():
            assert time.monotonic() < deadline, "traffic did not reach the victim"
            await asyncio.sleep(0.005)
        in_flight = len(victim_calls_in_flight())
        calls_before = len(receiver.requests_for("/crash"))
        killed_at = time.monotonic()
        victim.kill()
        await producing
        print(
            f"\ncrash: SIGKILL after {calls_before} of {total} calls, "
            f"{in_flight} of the victim's calls in flight (partitions {sorted(victim_partitions)})"
        )
        try:
            took = await events.wait_until(
                lambda values: expected <= ids_seen(values), timeout=90, what="all outcomes"
            )
        except AssertionError as missing:
            raise AssertionError(
                f"{missing}\n"
                + _explain_missing(events.values, tenant, partition_of, per_order)
                + f"\nthe victim owned partitions {sorted(victim_partitions)}"
                + f"\nrequests seen: {Counter(map(request_order, receiver.requests_for('/crash')))}"
                + "".join(f"\n--- {w.log_path}\n{w.log_tail(60)}" for w in workers)
            ) from None
        print(f"crash: all outcomes {time.monotonic() - killed_at:.1f} s after the kill")
        counts = await records_per_partition(bootstrap, input_topic, expected_total=total)
        assert sum(counts.values()) == total
        waited = await wait_committed(bootstrap, app_id, input_topic, counts, timeout=45)
        values = list(events.values)
    mine = [v for v in values if v.get("tenantId") == tenant]
    assert ids_seen(mine) == expected, "outcomes that belong to no input"
    duplicates = assert_same_content(values, tenant)
    assert len(mine) == total + duplicates
    requests = receiver.requests_for("/crash")
    repeated = len(requests) - total
    print(
        f"crash: {duplicates} duplicate outcome(s), {repeated} repeated call(s); "
        f"commits exact {waited:.1f} s after the last outcome ({took:.1f} s wait)"
    )
    # Redone after the crash, never at the same time as the victim's own call.
    assert_one_at_a_time(receiver)
    for oid, seqs in sequences_by_order(requests).items():
        assert first_occurrences(seqs) == list(range(per_order)), (oid, seqs)
    assert all(w.running for w in workers[1:])
    assert_no_late_events(workers)


# --- rebalance -----------------------------------------------------------------------------------


async def test_workers_join_and_leave_under_traffic(
    make_topics: MakeTopics, start_worker: StartWorker, receiver: RecordingReceiver
) -> None:
    partitions, orders = 6, 40
    topics = make_topics(partitions=partitions)
    bootstrap, catalog = topics.bootstrap, topics.catalog
    input_topic = catalog.input.name
    tenant, prefix = _names("rebal")
    receiver.route("/rebal", random_latency(0.05, 0.15, seed=11))
    await publish(bootstrap, topics, [settings_document(tenant, receiver.url("/rebal"))])
    app_id = unique_app_id()
    first, second = await start_workers(start_worker, topics, 2, app_id=app_id)

    order_ids = [f"{prefix}-{n}" for n in range(orders)]
    produced: list[tuple[str, int]] = []
    changes_done = asyncio.Event()

    async def trickle() -> None:
        """One event per order every 0.5 s, until 2 s after the membership changes."""
        seq, after = 0, 0
        async with Producer(bootstrap) as producer:
            while after < 4:  # keep flowing while the last rebalance settles
                for oid in order_ids:
                    await producer.send(input_topic, oid, return_event(tenant, oid, seq))
                    produced.append((oid, seq))
                await producer.flush()
                seq += 1
                if changes_done.is_set():
                    after += 1
                await asyncio.sleep(0.5)

    async with TopicWatcher(bootstrap, catalog.events.name) as events:
        producing = asyncio.create_task(trickle())
        try:
            await receiver.wait_for_requests(2 * orders, path="/rebal", timeout=30)
            joined = time.monotonic()
            third = await asyncio.to_thread(
                start_worker, topics, app_id=app_id, ready_timeout=READY_TIMEOUT
            )
            calls_at_join = len(receiver.requests_for("/rebal"))
            print(f"\nrebalance: third worker ready after {time.monotonic() - joined:.1f} s")
            await receiver.wait_for_requests(calls_at_join + orders, path="/rebal", timeout=30)
            code = await asyncio.to_thread(first.stop)
            calls_at_leave = len(receiver.requests_for("/rebal"))
            print(f"rebalance: first worker left with code {code}")
            changes_done.set()
        finally:
            changes_done.set()
            await producing
        total = len(produced)
        expected = {outcome_id(tenant, oid, seq) for oid, seq in produced}
        took = await events.wait_until(
            lambda values: expected <= ids_seen(values), timeout=90, what="all outcomes"
        )
        counts = await records_per_partition(bootstrap, input_topic, expected_total=total)
        waited = await wait_committed(bootstrap, app_id, input_topic, counts, timeout=45)
        values = list(events.values)
    mine = [v for v in values if v.get("tenantId") == tenant]
    duplicates = assert_same_content(values, tenant)
    assert ids_seen(mine) == expected
    assert len(mine) == total + duplicates
    requests = receiver.requests_for("/rebal")
    print(
        f"rebalance: {total} events, calls at join/leave/end {calls_at_join}/{calls_at_leave}/"
        f"{len(requests)}, {duplicates} duplicate outcome(s); all outcomes after {took:.1f} s, "
        f"commits exact {waited:.1f} s later"
    )
    # A graceful leave: SIGTERM drains and commits within the stop timeout (else SIGKILL: -9).
    assert code == 0, (
        f"the leaving worker did not stop on SIGTERM (exit {code}); {first.log_path}:\n"
        + first.log_tail(12)
    )
    assert_one_at_a_time(receiver)
    per_order = Counter(oid for oid, _ in produced)
    for oid, seqs in sequences_by_order(requests).items():
        assert first_occurrences(seqs) == list(range(per_order[oid])), (oid, seqs)
    assert second.running and third.running
    assert_no_late_events([first, second, third])


# --- shutdown ------------------------------------------------------------------------------------


async def test_sigterm_under_backpressure_drains_and_commits(
    make_topics: MakeTopics, start_worker: StartWorker, receiver: RecordingReceiver
) -> None:
    """A full window (intake paused on backpressure) must not keep SIGTERM from finishing."""
    count, window = 400, 50
    topics = make_topics(partitions=1)
    bootstrap, catalog = topics.bootstrap, topics.catalog
    input_topic = catalog.input.name
    tenant, prefix = _names("term")
    receiver.route("/term", Reply(status=200, delay=0.2))
    await publish(bootstrap, topics, [settings_document(tenant, receiver.url("/term"))])
    app_id = unique_app_id()
    worker = await asyncio.to_thread(
        start_worker,
        topics,
        app_id=app_id,
        ready_timeout=READY_TIMEOUT,
        env={"RETURNHOOK_MAX_UNCOMMITTED": str(window)},
    )
    order_ids = [f"{prefix}-{n}" for n in range(count)]
    records = [(oid.encode(), return_event(tenant, oid, 0)) for oid in order_ids]
    await produce(bootstrap, input_topic, records, partition=0)
    await receiver.wait_for_requests(2 * window, path="/term", timeout=30)
    assert receiver.max_concurrent <= window  # the window bounds what is accepted
    started = time.monotonic()
    code = await asyncio.to_thread(worker.stop)
    took = time.monotonic() - started
    committed = (await committed_offsets(bootstrap, app_id, input_topic, 1))[0] or 0
    outcomes = ids_seen(
        [orjson.loads(r.value) for r in await read_topic(bootstrap, catalog.events.name, idle=1.0)],
        tenant,
    )
    inputs = await read_topic(bootstrap, input_topic, min_count=count, idle=0.5)
    by_offset = {r.offset: orjson.loads(r.value)["orderId"] for r in inputs}
    print(
        f"\nshutdown: SIGTERM took {took:.1f} s (exit {code}); committed {committed} of "
        f"{count}; {len(outcomes)} outcomes; {len(receiver.requests_for('/term'))} calls"
    )
    assert code == 0, (
        f"the worker did not stop on SIGTERM within 15 s (exit {code}); {worker.log_path}:\n"
        + "\n".join(
            line
            for line in worker.log_text().splitlines()
            if "wait_empty" in line or "lanes.py" in line or "Signal received" in line
        )[-2000:]
    )
    # What was committed is finished: every input below the committed offset has its outcome.
    assert committed > 0
    missing = [o for o in range(committed) if outcome_id(tenant, by_offset[o], 0) not in outcomes]
    assert missing == [], f"committed past unfinished inputs at offsets {missing[:10]}"
