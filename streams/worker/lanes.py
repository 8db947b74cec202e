"""Keyed lanes: one order's events one at a time, in offset order; many orders at once.

A plain faust agent awaits each event in turn (19 events/s per partition at 50 ms webhooks), and
faust's ``concurrency=N`` loses per-order order and can commit past a running event. Here the agent
only decodes and submits; each order key gets its own task that runs that order's jobs in
sequence, and acknowledgements go out strictly in offset order through the OffsetLedger.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from streams.core.progress import LedgerView, PartitionProgress
from streams.worker.offset_ledger import Admission, OffsetLedger

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Job:
    partition: Hashable
    offset: int
    key: Hashable | None
    """Jobs with the same key run one at a time; None: nothing to run, only ack in turn."""
    work: Callable[[], Awaitable[None]] | None
    token: Any
    """What the ack callback receives (the faust event)."""
    size: int = 0
    """The input record's bytes, counted against the window's byte bound until acknowledged."""
    accepted_at: float = field(default_factory=time.monotonic)


class KeyedLanes:
    def __init__(
        self,
        *,
        window: int,
        ack: Callable[[Any], Awaitable[None]],
        on_error: Callable[[Job, BaseException], Awaitable[None]],
        max_bytes: int | None = None,
        max_unfinished: int | None = None,
        prior: Callable[[Hashable], PartitionProgress | None] | None = None,
    ) -> None:
        """``max_unfinished``: jobs accepted whose work has not finished yet (decoded events
        waiting for their turn or a call slot hold far more memory than finished ones waiting
        for their acknowledgement); None: only the window bounds them.
        ``prior(partition)``: the previous owner's progress record (see OffsetLedger)."""
        if window < 1:
            raise ValueError("the window must hold at least one event")
        if max_bytes is not None and max_bytes < 1:
            raise ValueError("the byte bound must be at least one byte")
        if max_unfinished is not None and max_unfinished < 1:
            raise ValueError("max_unfinished must be at least one job")
        self.window = window
        self.max_bytes = max_bytes
        self.max_unfinished = max_unfinished
        self._unfinished = 0
        self._drains = 0
        self._bytes = 0
        self.intake_waits = 0
        """How often intake paused on a full window (events or bytes)."""
        self._ack = ack
        self._on_error = on_error
        self._ledger: OffsetLedger[Hashable, Job] = OffsetLedger(prior)
        self._lanes: dict[Hashable, deque[Job]] = {}
        self._tasks: dict[Hashable, asyncio.Task[None]] = {}
        self._ack_lock = asyncio.Lock()
        self._room = asyncio.Event()
        self._room.set()
        self._paused = False
        self._running = asyncio.Event()
        self._running.set()
        self.failed: BaseException | None = None
        self.late_events = 0
        self.skipped_finished = 0
        """Events the previous owner had finished: acknowledged, not run again."""
        self.rerun = 0
        """Events the previous owner had taken but not recorded finished: run again."""

    # -- intake ---------------------------------------------------------------------------------

    async def submit(self, job: Job) -> bool:
        """Accepts a job, waiting while the window is full (backpressure).

        Returns False when the job is not taken: intake is paused (a drain: the partition's next
        owner redoes it), or its offset is a redelivery of one already accepted. The caller must
        then neither process nor acknowledge it.
        """
        while not self._paused and (self._full(job.size) or self._busy(job)):
            self.intake_waits += 1
            self._room.clear()
            await self._room.wait()
        if self._paused:
            return False
        admission = self._ledger.add(job.partition, job.offset, job)
        if not admission.taken:
            return False
        if admission is Admission.LATE:
            self.late_events += 1
            log.warning(
                "%s offset %d arrived after later offsets of its partition (the consumer dropped "
                "it and fetched it again); running it now, after its order's later events",
                job.partition,
                job.offset,
            )
        self._bytes += job.size
        if admission is Admission.FINISHED:
            self.skipped_finished += 1
            job.work = None
            try:
                await self._finish(job)
            except Exception as exc:
                await self._fail(job, exc)
            return True
        if admission is Admission.RERUN:
            self.rerun += 1
        if job.key is None or job.work is None:
            try:
                await self._finish(job)
            except Exception as exc:
                await self._fail(job, exc)
            return True
        self._unfinished += 1
        lane = self._lanes.get(job.key)
        if lane is None:
            self._lanes[job.key] = deque([job])
            self._tasks[job.key] = asyncio.create_task(self._run(job.key))
        else:
            lane.append(job)
        return True

    @contextlib.asynccontextmanager
    async def parked(self) -> AsyncIterator[None]:
        """A running job waits on something other than this worker (a retry's delay, a webhook
        host at its limit): it does not count against ``max_unfinished`` meanwhile, so one
        tenant's backlog never holds the intake of the others."""
        drains = self._drains
        self._unfinished -= 1
        self._room.set()
        try:
            yield
        finally:
            if drains == self._drains:  # a drain since has forgotten every job
                self._unfinished += 1

    def _busy(self, job: Job) -> bool:
        """As many jobs are unfinished as allowed (a job with no work never waits for this)."""
        limit = self.max_unfinished
        return limit is not None and job.work is not None and self._unfinished >= limit

    def _full(self, size: int) -> bool:
        """No room for one more event of ``size`` bytes; an empty window takes any one event."""
        if len(self._ledger) >= self.window:
            return True
        if self.max_bytes is None or self._bytes == 0:
            return False
        return self._bytes + size > self.max_bytes

    def start_partition(self, partition: Hashable, committed: int | None) -> None:
        """A newly assigned partition starts at its committed offset (see OffsetLedger.start)."""
        self._ledger.start(partition, committed)

    def pause(self) -> None:
        """Stops intake (waiting submitters return False) and lanes start no further job."""
        self._paused = True
        self._running.clear()
        self._room.set()

    def resume(self) -> None:
        self._paused = False
        self._running.set()
        self._room.set()

    async def resumed(self) -> None:
        """Returns once intake is open again."""
        await self._running.wait()

    @property
    def paused(self) -> bool:
        return self._paused

    # -- running --------------------------------------------------------------------------------

    async def _run(self, key: Hashable) -> None:
        lane = self._lanes[key]
        try:
            while lane and not self._paused:
                job = lane[0]
                assert job.work is not None
                try:
                    await job.work()
                    lane.popleft()
                    # A finished job may wait long for its ack (behind a partition head that is
                    # still retrying): keep only what the ack needs, not the decoded event.
                    job.work = None
                    self._unfinished -= 1
                    # The bookkeeping is guarded like the work: an error here would otherwise
                    # end this lane silently, and the order's later events would never run.
                    await self._finish(job)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    # Never acknowledged: the job stays at its partition's head, so nothing after
                    # it is committed either; the worker stops and the next owner redoes it.
                    await self._fail(job, exc)
                    return
        finally:
            if self._lanes.get(key) is lane:
                del self._lanes[key]
                self._tasks.pop(key, None)

    async def _fail(self, job: Job, exc: BaseException) -> None:
        self.failed = exc
        await self._on_error(job, exc)

    async def _finish(self, job: Job) -> None:
        async with self._ack_lock:
            for ready in self._ledger.finish(job.partition, job.offset):
                self._bytes -= ready.size
                await self._ack(ready.token)
        self._room.set()  # a waiting submitter checks again whether its event fits

    # -- rebalance / shutdown -------------------------------------------------------------------

    async def drain(
        self, timeout: float, before_clear: Callable[[], Awaitable[None]] | None = None
    ) -> list[Job]:
        """Lets running lanes finish for up to ``timeout`` s, then cancels the rest.

        Returns the jobs that were accepted but never acknowledged; the caller must make sure
        they are not acknowledged later (the partition's next owner redoes them). Intake stays
        paused until ``resume()``. ``before_clear`` runs once nothing runs any more, while the
        ledger still knows what finished (to write the progress records).
        """
        self.pause()
        tasks = list(self._tasks.values())
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout)
            for task in pending:
                task.cancel()
            for task in pending:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if before_clear is not None:
            try:
                await before_clear()
            except Exception:  # the rebalance goes on: the next owner redoes more, that is all
                log.exception("writing progress before the drain ends failed")
        dropped = self._ledger.clear()
        self._bytes = 0
        self._unfinished = 0
        self._drains += 1
        self._lanes.clear()
        self._tasks.clear()
        return dropped

    def views(self) -> dict[Hashable, tuple[LedgerView, PartitionProgress | None]]:
        """Per partition taken since the assignment: what finished, and the inherited record."""
        return self._ledger.views()

    # -- statistics -----------------------------------------------------------------------------

    def stats(self) -> dict[str, float]:
        now = time.monotonic()
        oldest = min((job.accepted_at for job in self._ledger.head_items()), default=None)
        return {
            "orders_active": len(self._lanes),
            "uncommitted_events": len(self._ledger),
            "uncommitted_bytes": self._bytes,
            "unfinished_events": self._unfinished,
            "max_uncommitted_bytes": self.max_bytes or 0,
            "intake_waits": self.intake_waits,
            "oldest_unfinished_age_s": round(now - oldest, 3) if oldest is not None else 0.0,
            "window": self.window,
            "paused": float(self._paused),
            "late_events": self.late_events,
            "skipped_finished": self.skipped_finished,
            "rerun": self.rerun,
        }
