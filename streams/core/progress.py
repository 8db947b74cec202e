"""Progress beyond the commit point: one small record per input partition. Pure.

A Kafka commit is one offset per partition, so an event that waits out its retries holds the
commit while later events finish; whoever owns the partition next would redo all of them. The
owner therefore also writes, per partition, what it knows beyond the commit point:

- ``acked``: every offset below it is finished (acknowledged; faust commits it soon);
- ``done``: finished offsets at or above ``acked`` (their outputs acknowledged by the broker, but
  an older offset still runs), as ``[start, end)`` ranges;
- ``retries``: events waiting out a retry: step index, attempts made, when the next is due;
- ``seen``: one past the highest offset the writer accepted (what a successor may redo);
- ``committed``: the group's committed offset as the writer knew it. A successor that starts
  below it (the group's offsets were reset on purpose) ignores the record.

Everything in a record is a fact once written (finished stays finished), so a stale record only
costs redone work, never lost work. The record describes only the uncommitted window: bounded.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from streams.core.response import describe

Range = tuple[int, int]
"""Offsets ``start`` up to, not including, ``end``."""


class RetryState(BaseModel):
    """Where one event's waiting retry stands: its next owner continues here."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    step: int = Field(ge=0)
    """The workflow step index whose delivery is being retried."""
    attempts: int = Field(ge=1)
    """Attempts made so far; the next one is number ``attempts + 1``."""
    due_ms: int = Field(alias="dueMs")
    """When the next attempt is due (epoch milliseconds)."""


class PartitionProgress(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)

    committed: int | None = None
    acked: int = Field(default=0, ge=0)
    seen: int = Field(default=0, ge=0)
    done: tuple[Range, ...] = ()
    retries: dict[int, RetryState] = Field(default_factory=dict)

    @field_validator("done")
    @classmethod
    def _ranges(cls, value: tuple[Range, ...]) -> tuple[Range, ...]:
        for start, end in value:
            if not 0 <= start < end:
                raise ValueError(f"[{start}, {end}) is not a range of offsets")
        return tuple(union(value, ()))

    def is_finished(self, offset: int) -> bool:
        return offset < self.acked or contains(self.done, offset)

    def retry_for(self, offset: int) -> RetryState | None:
        return self.retries.get(offset)

    def applies_from(self, first_offset: int) -> bool:
        """False when the partition restarts below the commit the writer knew (offsets reset)."""
        return self.committed is None or first_offset >= self.committed

    def was_seen(self, offset: int) -> bool:
        """Accepted by the writer but not recorded finished: a successor may be redoing it."""
        return offset < self.seen and not self.is_finished(offset)


@dataclass(frozen=True, slots=True)
class LedgerView:
    """What the owner's ledger knows of one partition right now."""

    acked: int
    """The oldest offset not yet acknowledged (or one past the last, when none is pending)."""
    finished: tuple[int, ...]
    """Offsets finished beyond ``acked`` (waiting for an older one), ascending."""
    seen: int


def progress_key(group: str, topic: str, partition: int) -> bytes:
    """The compaction key: one record per (consumer group, input topic, partition)."""
    return f"{group}|{topic}|{partition}".encode()


def ranges(offsets: Iterable[int]) -> list[Range]:
    """Ascending offsets (duplicates allowed) as the fewest ``[start, end)`` ranges."""
    out: list[Range] = []
    for offset in offsets:
        if out and out[-1][0] <= offset <= out[-1][1]:
            if offset == out[-1][1]:
                out[-1] = (out[-1][0], offset + 1)
            continue
        out.append((offset, offset + 1))
    return out


def union(a: Iterable[Range], b: Iterable[Range]) -> list[Range]:
    """Sorted, disjoint, non-adjacent ranges covering both inputs."""
    out: list[Range] = []
    for start, end in sorted([*a, *b]):
        if out and start <= out[-1][1]:
            if end > out[-1][1]:
                out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


def contains(done: tuple[Range, ...] | list[Range], offset: int) -> bool:
    index = bisect.bisect_right(done, (offset, float("inf"))) - 1
    return index >= 0 and done[index][0] <= offset < done[index][1]


def merge(
    prior: PartitionProgress | None,
    view: LedgerView | None,
    retries: Mapping[int, RetryState] | None = None,
    committed: int | None = None,
) -> PartitionProgress:
    """The record to write now: what the predecessor knew, plus what this owner learned.

    ``retries`` are this owner's own (they win over the predecessor's for the same offset). The
    result drops everything below ``acked``, folds finished ranges that start there into it, and
    forgets retries of finished offsets: it only ever describes the uncommitted window.
    """
    acked = max(prior.acked if prior else 0, view.acked if view else 0)
    done = union(prior.done if prior else (), ranges(view.finished) if view else ())
    kept: list[Range] = []
    for start, end in done:
        if end <= acked:
            continue
        if start <= acked:
            acked = end
            continue
        kept.append((start, end))
    everything = {**(prior.retries if prior else {}), **(retries or {})}
    waiting = {
        offset: state
        for offset, state in sorted(everything.items())
        if offset >= acked and not contains(kept, offset)
    }
    known_commit = [c for c in (prior.committed if prior else None, committed) if c is not None]
    return PartitionProgress(
        committed=max(known_commit) if known_commit else None,
        acked=acked,
        seen=max(prior.seen if prior else 0, view.seen if view else 0, acked),
        done=tuple(kept),
        retries=waiting,
    )


def encode(progress: PartitionProgress) -> bytes:
    return progress.model_dump_json(by_alias=True, exclude_defaults=True).encode()


def decode(raw: bytes | None) -> PartitionProgress | str | None:
    """The record, None when there is none (or a tombstone), or why it is not a valid one."""
    if not raw:
        return None
    try:
        return PartitionProgress.model_validate_json(raw)
    except ValidationError as exc:
        return describe(exc)
