"""Which input offsets may be acknowledged: only the finished prefix of each partition.

faust commits the first run of consecutive acked offsets, with an off-by-one in its head-gap check
(faust-streaming #606); acknowledging strictly in offset order, and only what is finished,
keeps it from ever committing past an event that is still running. Pure bookkeeping.
"""

from __future__ import annotations

import enum
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from streams.core.progress import LedgerView, PartitionProgress

T = TypeVar("T")

#: Skipped offset ranges remembered per partition (to tell a late record from a redelivery).
MAX_HOLES = 256


class Admission(enum.Enum):
    NEW = "new"
    """The next offset of the partition (or one past a gap): new work."""
    LATE = "late"
    """An offset skipped earlier that arrives after later ones: new work, out of order."""
    DUPLICATE = "duplicate"
    """An offset already taken (running, finished, or acknowledged): not work again."""
    FINISHED = "finished"
    """Finished by the partition's previous owner (its progress record says so): acknowledge it
    in its turn, do not run it again."""
    RERUN = "rerun"
    """Accepted by the previous owner, not recorded finished: new work, possibly done before."""

    @property
    def taken(self) -> bool:
        return self is not Admission.DUPLICATE


class PartitionLedger(Generic[T]):
    """The accepted, not yet acknowledged events of one partition, in offset order.

    ``prior`` is the previous owner's progress record: the offsets it finished are admitted as
    FINISHED (acknowledged in turn, never run again).
    """

    def __init__(
        self, committed: int | None = None, prior: PartitionProgress | None = None
    ) -> None:
        """``committed``: the partition's committed offset, where consumption starts.

        Without it the first offset seen is the baseline, and offsets from the committed one up
        to it, should the consumer deliver them late, would be taken for redeliveries.
        """
        self.prior = prior
        self.committed = committed
        """Where the partition was sought to at its assignment (the group's commit), if known."""
        self.prior_known = prior is not None
        """Whether the previous owner's record was looked up (at the first offset taken)."""
        self._pending: OrderedDict[int, T] = OrderedDict()
        self._finished: set[int] = set()
        self._last: int | None = committed - 1 if committed is not None else None
        self._holes: deque[tuple[int, int]] = deque(maxlen=MAX_HOLES)
        """[start, end) ranges jumped over between two accepted offsets."""

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, offset: int, item: T) -> Admission:
        """Takes the offset unless it was taken before.

        A jump past offsets never seen is normal (compaction, transaction markers) and is only
        remembered. An offset at or below one already taken is a redelivery (faust fetching again
        from the committed offset), unless it lies in such a jump: then the consumer dropped it
        the first time and it is work that nothing else will do.
        """
        last = self._last
        if last is None or offset > last:
            if last is not None and offset > last + 1:
                self._holes.append((last + 1, offset))
            self._pending[offset] = item
            self._last = offset
            return self._inherited(offset, Admission.NEW)
        if offset in self._pending or not self._fill_hole(offset):
            return Admission.DUPLICATE
        self._pending[offset] = item
        self._pending = OrderedDict(sorted(self._pending.items()))
        return self._inherited(offset, Admission.LATE)

    def _inherited(self, offset: int, admission: Admission) -> Admission:
        prior = self.prior
        if prior is None:
            return admission
        if prior.is_finished(offset):
            return Admission.FINISHED
        if prior.was_seen(offset) and prior.retry_for(offset) is None:
            return Admission.RERUN
        return admission

    def _fill_hole(self, offset: int) -> bool:
        for index, (start, end) in enumerate(self._holes):
            if start <= offset < end:
                del self._holes[index]
                for part in ((start, offset), (offset + 1, end)):
                    if part[0] < part[1]:
                        self._holes.append(part)
                return True
        return False

    def finish(self, offset: int) -> list[T]:
        """Marks one offset done; returns the items that may now be acknowledged, in order."""
        if offset not in self._pending:
            raise KeyError(f"offset {offset} is not pending")
        self._finished.add(offset)
        ready: list[T] = []
        while self._pending:
            head = next(iter(self._pending))
            if head not in self._finished:
                break
            self._finished.discard(head)
            ready.append(self._pending.pop(head))
        return ready

    @property
    def head(self) -> int | None:
        """The oldest offset not yet acknowledged: the one that holds the commit back."""
        return next(iter(self._pending), None)

    @property
    def head_item(self) -> T:
        return next(iter(self._pending.values()))

    def view(self) -> LedgerView:
        """What a progress record needs: the acknowledged prefix and what finished beyond it."""
        last = self._last if self._last is not None else -1
        head = self.head
        return LedgerView(
            acked=head if head is not None else last + 1,
            finished=tuple(sorted(self._finished)),
            seen=last + 1,
        )

    def clear(self) -> list[T]:
        """Forgets everything (partition revoked); returns what was never acknowledged."""
        items = list(self._pending.values())
        self._pending.clear()
        self._finished.clear()
        self._holes.clear()
        return items


K = TypeVar("K", bound=Hashable)


class OffsetLedger(Generic[K, T]):
    """A PartitionLedger per partition.

    ``prior(partition)`` is asked once per partition and assignment, when its first offset
    arrives, for the previous owner's progress record (None: none).
    """

    def __init__(self, prior: Callable[[K], PartitionProgress | None] | None = None) -> None:
        self._partitions: dict[K, PartitionLedger[T]] = {}
        self._count = 0  # kept, not summed: len() runs on every submit and finish
        self._prior = prior

    def __len__(self) -> int:
        return self._count

    def start(self, partition: K, committed: int | None) -> None:
        """A partition was assigned and sought to ``committed``: the baseline of its offsets.

        Ignored while the partition still holds events (they were accepted before the seek).
        """
        current = self._partitions.get(partition)
        if committed is None or committed < 0 or (current is not None and len(current)):
            return
        self._partitions[partition] = PartitionLedger(committed)

    def add(self, partition: K, offset: int, item: T) -> Admission:
        ledger = self._partitions.get(partition)
        if ledger is None:
            ledger = self._partitions[partition] = PartitionLedger()
        if not ledger.prior_known:
            # Asked at the first offset, not at start(): the progress topic has been read to
            # its end by then (the recovery waits for it before the input flows).
            ledger.prior_known = True
            prior = self._prior(partition) if self._prior is not None else None
            # The group's own commit says where this owner starts; the first record seen may be
            # one the consumer fetched before its seek (then dropped as a repeat).
            start = ledger.committed if ledger.committed is not None else offset
            if prior is not None and not prior.applies_from(start):
                prior = None  # the group's offsets were reset below it: run everything again
            ledger.prior = prior
        admission = ledger.add(offset, item)
        self._count += int(admission.taken)
        return admission

    def finish(self, partition: K, offset: int) -> list[T]:
        ready = self._partitions[partition].finish(offset)
        self._count -= len(ready)
        return ready

    def heads(self) -> dict[K, int]:
        return {k: p.head for k, p in self._partitions.items() if p.head is not None}

    def views(self) -> dict[K, tuple[LedgerView, PartitionProgress | None]]:
        """Per partition taken since the assignment: its view and the record it started from."""
        return {k: (p.view(), p.prior) for k, p in self._partitions.items()}

    def head_items(self) -> list[T]:
        """The oldest unacknowledged item of each partition."""
        return [p.head_item for p in self._partitions.values() if p.head is not None]

    def clear(self) -> list[T]:
        items = [item for p in self._partitions.values() for item in p.clear()]
        self._partitions.clear()
        self._count = 0
        return items
