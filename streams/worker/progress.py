"""The shell around ``streams.core.progress``: read the previous owner's record, write ours.

Reading: every worker tails the progress topic (streams/kafka/progress_reader.py) and, at each
assignment, reads it to its end before the input flows, so the record of a partition is at hand
before its first input record arrives. Writing: one record per owned partition whose state
changed, every commit interval, at once when a delivery starts waiting for a retry, and at the
end of every drain (rebalance, shutdown) while the ledger still knows what finished. Each record
is its own awaited send: the embedded broker answers wrong end offsets after batched writes, and
the reader waits for the end offsets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Hashable, Mapping
from typing import Any

from streams.core.progress import (
    LedgerView,
    PartitionProgress,
    RetryState,
    decode,
    encode,
    merge,
    progress_key,
)

log = logging.getLogger(__name__)

Views = Callable[[], Mapping[Hashable, tuple[LedgerView, PartitionProgress | None]]]


class ProgressBook:
    def __init__(
        self,
        *,
        group: str,
        lookup: Callable[[bytes], bytes | None],
        send: Callable[[bytes, bytes], Awaitable[None]],
        committed: Callable[[Any], int | None],
    ) -> None:
        """``lookup(key)``: the progress table; ``send(key, value)``: returns once the broker
        acknowledged it; ``committed(tp)``: the group's committed offset as this worker knows it.
        Partitions are faust TPs (``.topic``, ``.partition``)."""
        self.group = group
        self._lookup = lookup
        self._send = send
        self._committed = committed
        self._priors: dict[Any, PartitionProgress] = {}
        self._retries: dict[Any, dict[int, RetryState]] = {}
        self._written: dict[bytes, bytes] = {}
        self._inputs: dict[Any, tuple[Any, ...]] = {}
        """What each partition's last record was computed from: unchanged, nothing to do."""
        self._versions: dict[Any, int] = {}
        self._lock = asyncio.Lock()
        self._urgent = asyncio.Event()
        self.records_written = 0

    def key(self, tp: Any) -> bytes:
        return progress_key(self.group, tp.topic, tp.partition)

    # -- reading ------------------------------------------------------------------------------

    def prior(self, tp: Any) -> PartitionProgress | None:
        """The previous owner's record of ``tp``; asked by the ledger at the first offset."""
        decoded = decode(self._lookup(self.key(tp)))
        if isinstance(decoded, str):
            log.warning(
                "the progress record of %s is not valid (%s); everything from the committed "
                "offset runs again",
                tp,
                decoded,
            )
            return None
        if decoded is not None:
            self._priors[tp] = decoded
            log.info(
                "%s: the previous owner finished everything below %d and %d range(s) beyond; "
                "%d delivery(ies) wait for a retry",
                tp,
                decoded.acked,
                len(decoded.done),
                len(decoded.retries),
            )
        return decoded

    def retry_for(self, tp: Any, offset: int) -> RetryState | None:
        """Where this event's retry stands, by this worker or the previous owner."""
        mine = self._retries.get(tp)
        if mine and offset in mine:
            return mine[offset]
        prior = self._priors.get(tp)
        return prior.retry_for(offset) if prior is not None else None

    # -- learning -----------------------------------------------------------------------------

    def waiting(self, tp: Any, offset: int, step: int, attempts: int, due_s: float) -> None:
        """A delivery made ``attempts`` attempts and waits until ``due_s``: record it soon."""
        self._retries.setdefault(tp, {})[offset] = RetryState(
            step=step, attempts=attempts, due_ms=int(due_s * 1000)
        )
        self._versions[tp] = self._versions.get(tp, 0) + 1
        self._urgent.set()

    # -- writing ------------------------------------------------------------------------------

    async def write(self, views: Views) -> int:
        """One awaited send per partition whose record changed; returns how many were sent.

        Serialized, and the ledger is read under the lock: a record computed earlier must never
        land after one computed later.
        """
        sent = 0
        async with self._lock:
            for tp, (view, prior) in views().items():
                committed = self._committed(tp)
                inputs = (view, id(prior), self._versions.get(tp, 0), committed)
                if self._inputs.get(tp) == inputs:
                    continue
                mine = self._retries.get(tp)
                progress = merge(prior, view, mine, committed)
                if mine:
                    for offset in [o for o in mine if o not in progress.retries]:
                        del mine[offset]  # finished: nothing waits any more
                key, value = self.key(tp), encode(progress)
                if self._written.get(key) == value:
                    continue
                await self._send(key, value)
                self._written[key] = value
                self._inputs[tp] = inputs
                sent += 1
        self.records_written += sent
        return sent

    def forget(self) -> None:
        """After a drain: the partitions may go elsewhere; the next assignment reads anew."""
        self._priors.clear()
        self._retries.clear()
        self._written.clear()
        self._inputs.clear()

    async def run(self, interval_s: float, views: Views, coalesce_s: float = 0.25) -> None:
        """Writes every ``interval_s`` and soon after a delivery starts waiting (retry waits
        within ``coalesce_s`` share one round of writes); until cancelled."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._urgent.wait(), timeout=interval_s)
                await asyncio.sleep(coalesce_s)
            self._urgent.clear()
            try:
                await self.write(views)
            except Exception as exc:  # the next round tries again; a crash redoes a bit more
                log.warning("writing progress records failed: %s", exc)
