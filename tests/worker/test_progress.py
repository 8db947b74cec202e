"""The progress book (streams/worker/progress.py) with a fake send and a fake table."""

from __future__ import annotations

from typing import NamedTuple

from streams.core.progress import LedgerView, PartitionProgress, RetryState, decode, encode
from streams.worker.progress import ProgressBook


class TP(NamedTuple):
    topic: str
    partition: int


P0 = TP("orders", 0)


def book(table: dict[bytes, bytes], sent: list[tuple[bytes, bytes]]) -> ProgressBook:
    async def send(key: bytes, value: bytes) -> None:
        sent.append((key, value))

    return ProgressBook(group="g", lookup=table.get, send=send, committed=lambda tp: 10)


async def test_writes_only_changed_partitions_and_keeps_retries_until_finished() -> None:
    sent: list[tuple[bytes, bytes]] = []
    progress = book({}, sent)
    views = {P0: (LedgerView(acked=10, finished=(12,), seen=13), None)}
    progress.waiting(P0, 10, step=0, attempts=2, due_s=100.5)
    assert await progress.write(lambda: views) == 1
    assert await progress.write(lambda: views) == 0  # nothing changed: nothing sent
    key, value = sent[0]
    assert key == b"g|orders|0"
    record = decode(value)
    assert isinstance(record, PartitionProgress)
    assert record.acked == 10 and record.done == ((12, 13),) and record.committed == 10
    assert record.retries == {10: RetryState(step=0, attempts=2, due_ms=100_500)}
    assert progress.retry_for(P0, 10) == RetryState(step=0, attempts=2, due_ms=100_500)
    # 10 finished: the retry is forgotten, in the record and in the book.
    views = {P0: (LedgerView(acked=13, finished=(), seen=13), None)}
    assert await progress.write(lambda: views) == 1
    assert decode(sent[-1][1]) == PartitionProgress(committed=10, acked=13, seen=13)
    assert progress.retry_for(P0, 10) is None


async def test_reads_the_previous_owners_record_and_its_retries() -> None:
    previous = PartitionProgress(
        acked=5, seen=9, retries={6: RetryState(step=1, attempts=3, due_ms=7)}
    )
    progress = book({b"g|orders|0": encode(previous)}, [])
    assert progress.prior(P0) == previous
    assert progress.retry_for(P0, 6) == RetryState(step=1, attempts=3, due_ms=7)
    assert progress.retry_for(P0, 7) is None
    assert progress.prior(TP("orders", 1)) is None
    progress.forget()
    assert progress.retry_for(P0, 6) is None


async def test_a_corrupt_record_is_ignored_with_a_warning(caplog) -> None:
    progress = book({b"g|orders|0": b'{"acked": "many"}'}, [])
    assert progress.prior(P0) is None
    assert "not valid" in caplog.text
