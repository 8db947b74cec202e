import asyncio
import random
import time

import pytest

from streams.worker.lanes import Job, KeyedLanes


class Recorder:
    def __init__(self) -> None:
        self.acked: list[tuple[str, int]] = []
        self.errors: list[BaseException] = []

    async def ack(self, token: tuple[str, int]) -> None:
        self.acked.append(token)

    async def on_error(self, job: Job, exc: BaseException) -> None:
        self.errors.append(exc)


def job(partition: str, offset: int, key: object, work) -> Job:
    return Job(partition=partition, offset=offset, key=key, work=work, token=(partition, offset))


async def settle(lanes: KeyedLanes) -> None:
    for _ in range(200):
        if lanes.stats()["uncommitted_events"] == 0:
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"lanes did not settle: {lanes.stats()}")


async def test_one_key_runs_in_order_and_never_concurrently() -> None:
    rec = Recorder()
    lanes = KeyedLanes(window=100, ack=rec.ack, on_error=rec.on_error)
    running: dict[str, int] = {}
    seen: dict[str, list[int]] = {}
    overlap = []

    def work_for(key: str, offset: int):
        async def work() -> None:
            running[key] = running.get(key, 0) + 1
            if running[key] > 1:
                overlap.append(key)
            await asyncio.sleep(random.uniform(0, 0.01))
            seen.setdefault(key, []).append(offset)
            running[key] -= 1

        return work

    offsets = {}
    for offset in range(60):
        key = f"order-{offset % 6}"
        offsets.setdefault(key, []).append(offset)
        await lanes.submit(job("p0", offset, key, work_for(key, offset)))
    await settle(lanes)
    assert overlap == []
    assert seen == offsets
    assert rec.acked == [("p0", o) for o in range(60)]


async def test_different_keys_run_concurrently() -> None:
    rec = Recorder()
    lanes = KeyedLanes(window=100, ack=rec.ack, on_error=rec.on_error)
    active = 0
    peak = 0

    async def work() -> None:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.02)
        active -= 1

    for offset in range(20):
        await lanes.submit(job("p0", offset, f"k{offset}", work))
    await settle(lanes)
    assert peak == 20


async def test_acks_wait_for_a_slow_earlier_event() -> None:
    rec = Recorder()
    lanes = KeyedLanes(window=100, ack=rec.ack, on_error=rec.on_error)
    release = asyncio.Event()

    async def slow() -> None:
        await release.wait()

    async def fast() -> None:
        return None

    await lanes.submit(job("p0", 0, "slow", slow))
    await lanes.submit(job("p0", 1, "fast", fast))
    await lanes.submit(job("p0", 2, None, None))  # an ignored event: nothing to run
    await asyncio.sleep(0.02)
    assert rec.acked == []
    assert lanes.stats()["uncommitted_events"] == 3
    release.set()
    await settle(lanes)
    assert rec.acked == [("p0", 0), ("p0", 1), ("p0", 2)]


async def test_full_window_pauses_intake_until_something_is_acknowledged() -> None:
    rec = Recorder()
    lanes = KeyedLanes(window=2, ack=rec.ack, on_error=rec.on_error)
    release = asyncio.Event()

    async def blocked() -> None:
        await release.wait()

    await lanes.submit(job("p0", 0, "a", blocked))
    await lanes.submit(job("p0", 1, "b", blocked))
    third = asyncio.create_task(lanes.submit(job("p0", 2, "c", blocked)))
    await asyncio.sleep(0.02)
    assert not third.done()
    release.set()
    await asyncio.wait_for(third, 1)
    await settle(lanes)
    assert [o for _, o in rec.acked] == [0, 1, 2]


async def test_an_exception_is_reported_and_never_acknowledged() -> None:
    rec = Recorder()
    lanes = KeyedLanes(window=10, ack=rec.ack, on_error=rec.on_error)

    async def boom() -> None:
        raise RuntimeError("boom")

    ran: list[int] = []

    def ok_at(offset: int):
        async def ok() -> None:
            ran.append(offset)

        return ok

    await lanes.submit(job("p0", 0, "a", boom))
    await lanes.submit(job("p0", 1, "b", ok_at(1)))
    await lanes.submit(job("p0", 2, "a", ok_at(2)))  # behind the failed one in its lane
    await asyncio.sleep(0.05)
    assert [str(e) for e in rec.errors] == ["boom"]
    assert isinstance(lanes.failed, RuntimeError)
    assert ran == [1]  # the other lane ran; the failed lane started nothing after offset 0
    assert rec.acked == []  # offset 1 finished but may not pass the failed offset 0
    assert lanes.stats()["uncommitted_events"] == 3


async def test_drain_lets_quick_calls_finish_and_cancels_the_rest_unacknowledged() -> None:
    rec = Recorder()
    lanes = KeyedLanes(window=10, ack=rec.ack, on_error=rec.on_error)
    cancelled = []

    async def quick() -> None:
        await asyncio.sleep(0.01)

    async def stuck() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    await lanes.submit(job("p0", 0, "q", quick))
    await lanes.submit(job("p0", 1, "s", stuck))
    await lanes.submit(job("p1", 0, "q2", quick))
    await asyncio.sleep(0.005)  # every lane has started its first job
    dropped = await lanes.drain(timeout=0.2)
    assert cancelled == [True]
    assert [(j.partition, j.offset) for j in dropped] == [("p0", 1)]
    assert rec.acked == [("p0", 0), ("p1", 0)]
    assert lanes.paused
    assert lanes.stats()["uncommitted_events"] == 0
    # while paused nothing is taken (the partition's next owner redoes it) ...
    assert not await lanes.submit(job("p0", 1, "s", quick))
    # ... and after resume the same offsets are new work again: the ledger was cleared
    lanes.resume()
    assert await lanes.submit(job("p0", 1, "s", quick))
    await settle(lanes)
    assert rec.acked[-1] == ("p0", 1)


async def test_a_drain_starts_no_queued_job_of_a_lane() -> None:
    rec = Recorder()
    lanes = KeyedLanes(window=10, ack=rec.ack, on_error=rec.on_error)
    ran: list[int] = []

    def work_for(offset: int):
        async def work() -> None:
            ran.append(offset)
            await asyncio.sleep(0.05)

        return work

    for offset in range(3):
        await lanes.submit(job("p0", offset, "one-order", work_for(offset)))
    await asyncio.sleep(0.01)
    dropped = await lanes.drain(timeout=1)
    assert ran == [0]
    assert rec.acked == [("p0", 0)]
    assert [j.offset for j in dropped] == [1, 2]


async def test_a_submitter_waiting_for_room_is_released_by_a_drain() -> None:
    rec = Recorder()
    lanes = KeyedLanes(window=1, ack=rec.ack, on_error=rec.on_error)
    release = asyncio.Event()

    async def blocked() -> None:
        await release.wait()

    assert await lanes.submit(job("p0", 0, "a", blocked))
    waiting = asyncio.create_task(lanes.submit(job("p0", 1, "b", blocked)))
    await asyncio.sleep(0.02)
    assert not waiting.done()
    dropped = await lanes.drain(timeout=0.05)
    assert await asyncio.wait_for(waiting, 1) is False
    assert [j.offset for j in dropped] == [0]
    assert rec.acked == []


async def test_redelivered_offsets_are_skipped() -> None:
    rec = Recorder()
    lanes = KeyedLanes(window=10, ack=rec.ack, on_error=rec.on_error)
    runs = []

    async def work() -> None:
        runs.append(1)

    assert await lanes.submit(job("p0", 0, "a", work))
    assert await lanes.submit(job("p0", 1, "a", work))
    await settle(lanes)
    assert not await lanes.submit(job("p0", 0, "a", work))
    assert not await lanes.submit(job("p0", 1, "a", work))
    assert await lanes.submit(job("p0", 2, "a", work))
    await settle(lanes)
    assert len(runs) == 3
    assert rec.acked == [("p0", 0), ("p0", 1), ("p0", 2)]


async def test_a_late_offset_runs_and_holds_the_acks_behind_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An offset skipped by the consumer and delivered after later ones is work, not a repeat."""
    rec = Recorder()
    lanes = KeyedLanes(window=10, ack=rec.ack, on_error=rec.on_error)
    runs: list[int] = []
    release = asyncio.Event()

    def work_for(offset: int, wait: bool = False):
        async def work() -> None:
            if wait:
                await release.wait()
            runs.append(offset)

        return work

    assert await lanes.submit(job("p0", 0, "a", work_for(0)))
    assert await lanes.submit(job("p0", 2, "b", work_for(2)))
    await settle(lanes)
    assert await lanes.submit(job("p0", 3, "c", work_for(3)))
    assert await lanes.submit(job("p0", 1, "d", work_for(1, wait=True)))  # late
    await asyncio.sleep(0.01)
    assert rec.acked == [("p0", 0), ("p0", 2)]  # 3 finished, but 1 is older and still running
    release.set()
    await settle(lanes)
    assert rec.acked[2:] == [("p0", 1), ("p0", 3)]
    assert sorted(runs) == [0, 1, 2, 3]
    assert lanes.stats()["late_events"] == 1
    assert "p0 offset 1 arrived after later offsets" in caplog.text
    assert not await lanes.submit(job("p0", 1, "d", work_for(1)))  # now a plain repeat


async def test_resumed_returns_once_intake_is_open_again() -> None:
    rec = Recorder()
    lanes = KeyedLanes(window=10, ack=rec.ack, on_error=rec.on_error)
    await asyncio.wait_for(lanes.resumed(), 1)  # open from the start
    await lanes.drain(timeout=0.1)
    waiting = asyncio.create_task(lanes.resumed())
    await asyncio.sleep(0.01)
    assert not waiting.done()
    lanes.resume()
    await asyncio.wait_for(waiting, 1)


async def test_stats_report_active_orders_and_oldest_age() -> None:
    rec = Recorder()
    lanes = KeyedLanes(window=10, ack=rec.ack, on_error=rec.on_error)
    release = asyncio.Event()

    async def blocked() -> None:
        await release.wait()

    before_first = time.monotonic()
    await lanes.submit(job("p0", 0, "a", blocked))
    after_first = time.monotonic()
    await asyncio.sleep(0.05)
    # Younger events, one heading a partition of its own: the age is the oldest one's.
    await lanes.submit(job("p0", 1, "a", blocked))
    await lanes.submit(job("p1", 0, "b", blocked))
    await asyncio.sleep(0.03)
    before_stats = time.monotonic()
    stats = lanes.stats()
    after_stats = time.monotonic()
    assert stats["orders_active"] == 2
    assert stats["uncommitted_events"] == 3
    # Between the least and the most the first event can have aged; 1 ms for the rounding.
    assert (
        before_stats - after_first - 0.001
        <= stats["oldest_unfinished_age_s"]
        <= after_stats - before_first + 0.001
    ), stats
    release.set()
    await settle(lanes)
    assert lanes.stats()["orders_active"] == 0


def test_window_must_be_positive() -> None:
    with pytest.raises(ValueError):
        KeyedLanes(window=0, ack=Recorder().ack, on_error=Recorder().on_error)


# -- issue 14: a byte bound beside the event bound; bookkeeping errors crash ------------------


def sized(partition: str, offset: int, key: object, work, size: int) -> Job:
    return Job(
        partition=partition,
        offset=offset,
        key=key,
        work=work,
        token=(partition, offset),
        size=size,
    )


async def test_intake_waits_while_the_uncommitted_bytes_are_at_the_bound_and_resumes() -> None:
    rec = Recorder()
    lanes = KeyedLanes(window=100, max_bytes=1000, ack=rec.ack, on_error=rec.on_error)
    gate = asyncio.Event()

    async def held() -> None:
        await gate.wait()

    assert await lanes.submit(sized("p0", 0, "a", held, 600))
    third = asyncio.ensure_future(lanes.submit(sized("p0", 2, "c", held, 600)))
    assert await lanes.submit(sized("p0", 1, "b", held, 300)) is True  # 900 ≤ 1000: fits
    await asyncio.sleep(0.02)
    assert not third.done(), "1500 bytes would be over the bound: intake must wait"
    assert lanes.stats()["uncommitted_bytes"] == 900
    assert lanes.stats()["intake_waits"] >= 1
    gate.set()
    assert await asyncio.wait_for(third, 1.0) is True
    await settle(lanes)
    assert rec.acked == [("p0", 0), ("p0", 1), ("p0", 2)]  # nothing lost
    assert lanes.stats()["uncommitted_bytes"] == 0


async def test_one_record_larger_than_the_bound_is_still_taken_into_an_empty_window() -> None:
    rec = Recorder()
    lanes = KeyedLanes(window=10, max_bytes=100, ack=rec.ack, on_error=rec.on_error)

    async def work() -> None:
        return None

    assert await asyncio.wait_for(lanes.submit(sized("p0", 0, "a", work, 5000)), 1.0)
    await settle(lanes)
    assert rec.acked == [("p0", 0)]


async def test_an_error_in_the_acknowledgement_goes_to_the_crash_path() -> None:
    errors: list[BaseException] = []
    failed_jobs: list[Job] = []

    async def broken_ack(token: object) -> None:
        raise RuntimeError("ack exploded")

    async def on_error(job: Job, exc: BaseException) -> None:
        failed_jobs.append(job)
        errors.append(exc)

    lanes = KeyedLanes(window=10, ack=broken_ack, on_error=on_error)

    async def work() -> None:
        return None

    await lanes.submit(job("p0", 0, "a", work))
    for _ in range(100):
        if errors:
            break
        await asyncio.sleep(0.005)
    assert [str(e) for e in errors] == ["ack exploded"]
    assert failed_jobs[0].offset == 0
    assert isinstance(lanes.failed, RuntimeError)


async def test_an_error_acknowledging_a_job_without_work_goes_to_the_crash_path() -> None:
    errors: list[BaseException] = []

    async def broken_ack(token: object) -> None:
        raise RuntimeError("ack exploded")

    async def on_error(job: Job, exc: BaseException) -> None:
        errors.append(exc)

    lanes = KeyedLanes(window=10, ack=broken_ack, on_error=on_error)
    assert await lanes.submit(job("p0", 0, None, None)) is True
    assert [str(e) for e in errors] == ["ack exploded"]
    assert lanes.failed is errors[0]


def test_the_byte_bound_must_be_positive() -> None:
    with pytest.raises(ValueError, match="byte bound"):
        KeyedLanes(window=1, max_bytes=0, ack=Recorder().ack, on_error=Recorder().on_error)


async def test_intake_waits_while_max_unfinished_jobs_are_unfinished_and_resumes() -> None:
    rec = Recorder()
    lanes = KeyedLanes(window=100, max_unfinished=2, ack=rec.ack, on_error=rec.on_error)
    gates = [asyncio.Event() for _ in range(3)]

    def gated(i: int):
        async def work() -> None:
            await gates[i].wait()

        return work

    await lanes.submit(job("p0", 0, "a", gated(0)))
    await lanes.submit(job("p0", 1, "b", gated(1)))
    # A job with nothing to run is still taken (it only waits for its turn to be acknowledged).
    assert await asyncio.wait_for(lanes.submit(job("p0", 2, None, None)), 1)
    third = asyncio.ensure_future(lanes.submit(job("p0", 3, "c", gated(2))))
    await asyncio.sleep(0.02)
    assert not third.done()
    assert lanes.stats()["unfinished_events"] == 2
    gates[1].set()  # "b" finishes (not yet acknowledged: "a" holds the partition's head)
    assert await asyncio.wait_for(third, 1)
    assert rec.acked == []
    gates[0].set()
    gates[2].set()
    await settle(lanes)
    assert rec.acked == [("p0", o) for o in range(4)]
    assert lanes.stats()["unfinished_events"] == 0


def test_max_unfinished_must_be_positive() -> None:
    rec = Recorder()
    with pytest.raises(ValueError, match="max_unfinished"):
        KeyedLanes(window=10, max_unfinished=0, ack=rec.ack, on_error=rec.on_error)


async def test_events_the_previous_owner_finished_are_skipped_in_order() -> None:
    """Offsets 0-9 of one order each; the previous owner finished 0-2 and 5-6 of order A while
    3 (order A) waited on a retry: A's 3 runs first, then A's 4, 7…; nothing finished runs."""
    from streams.core.progress import PartitionProgress, RetryState

    prior = PartitionProgress(
        acked=3,
        seen=8,
        done=((5, 7),),
        retries={3: RetryState(step=0, attempts=2, due_ms=0)},
    )
    rec = Recorder()
    lanes = KeyedLanes(window=100, ack=rec.ack, on_error=rec.on_error, prior=lambda tp: prior)
    ran: list[int] = []
    release = asyncio.Event()

    def work_for(offset: int):
        async def work() -> None:
            if offset == 3:
                await release.wait()  # the resumed retry holds the partition's head
            ran.append(offset)

        return work

    for offset in range(10):
        assert await lanes.submit(job("p0", offset, "order-A", work_for(offset)))
    await asyncio.sleep(0.01)
    assert ran == []  # 4 waits behind 3 in its order; 5 and 6 are not run at all
    assert rec.acked == [("p0", 0), ("p0", 1), ("p0", 2)]  # never past the running 3
    release.set()
    await settle(lanes)
    assert ran == [3, 4, 7, 8, 9]
    assert rec.acked == [("p0", o) for o in range(10)]
    stats = lanes.stats()
    assert stats["skipped_finished"] == 5
    assert stats["rerun"] == 2  # 4 and 7: taken by the previous owner, not recorded finished


async def test_a_parked_job_makes_room_for_intake_and_counts_again_after() -> None:
    rec = Recorder()
    lanes = KeyedLanes(window=100, max_unfinished=1, ack=rec.ack, on_error=rec.on_error)
    parked, release = asyncio.Event(), asyncio.Event()

    async def waits_on_a_retry() -> None:
        async with lanes.parked():
            parked.set()
            await release.wait()

    await lanes.submit(job("p0", 0, "a", waits_on_a_retry))
    await asyncio.wait_for(parked.wait(), 1)
    assert lanes.stats()["unfinished_events"] == 0
    assert await asyncio.wait_for(lanes.submit(job("p0", 1, "b", release.wait)), 1)
    release.set()
    await settle(lanes)
    assert rec.acked == [("p0", 0), ("p0", 1)]
    assert lanes.stats()["unfinished_events"] == 0
