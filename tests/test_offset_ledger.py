import pytest

from streams.offset_ledger import OffsetLedger, PartitionLedger


def test_out_of_order_completion_acks_only_the_finished_prefix() -> None:
    ledger: PartitionLedger[str] = PartitionLedger()
    for offset in (10, 11, 12, 13):
        ledger.add(offset, f"e{offset}")
    assert ledger.finish(12) == []
    assert ledger.finish(11) == []
    assert ledger.head == 10
    assert ledger.finish(10) == ["e10", "e11", "e12"]
    assert ledger.head == 13
    assert ledger.finish(13) == ["e13"]
    assert len(ledger) == 0


def test_gaps_in_offsets_from_filtered_or_compacted_records_do_not_block() -> None:
    ledger: PartitionLedger[int] = PartitionLedger()
    for offset in (3, 7, 8):
        ledger.add(offset, offset)
    assert ledger.finish(7) == []
    assert ledger.finish(3) == [3, 7]
    assert ledger.finish(8) == [8]


def test_a_redelivered_offset_is_not_new_work() -> None:
    """faust re-fetches from the committed offset after recovery within one generation."""
    ledger: PartitionLedger[int] = PartitionLedger()
    assert ledger.add(5, 5)
    assert not ledger.add(5, 5)  # still pending: the first copy acknowledges in its turn
    assert not ledger.add(4, 4)
    assert ledger.finish(5) == [5]
    assert not ledger.add(5, 5)  # already acknowledged: done, not redone
    assert len(ledger) == 0
    assert ledger.add(6, 6)


def test_finishing_an_unknown_offset_is_an_error() -> None:
    ledger: PartitionLedger[int] = PartitionLedger()
    with pytest.raises(KeyError):
        ledger.finish(1)


def test_partitions_are_independent() -> None:
    ledger: OffsetLedger[str, str] = OffsetLedger()
    ledger.add("p0", 0, "a0")
    ledger.add("p0", 1, "a1")
    ledger.add("p1", 0, "b0")
    assert ledger.finish("p0", 1) == []
    assert ledger.finish("p1", 0) == ["b0"]
    assert ledger.heads() == {"p0": 0}
    assert ledger.head_items() == ["a0"]
    assert len(ledger) == 2


def test_clear_on_revoke_returns_everything_never_acknowledged() -> None:
    ledger: OffsetLedger[str, str] = OffsetLedger()
    ledger.add("p0", 0, "a0")
    ledger.add("p0", 1, "a1")
    ledger.add("p1", 4, "b4")
    assert ledger.finish("p0", 1) == []
    assert sorted(ledger.clear()) == ["a0", "a1", "b4"]
    assert len(ledger) == 0
    assert ledger.heads() == {}
    ledger.add("p0", 0, "again")  # a new owner may start from the committed offset again
    assert ledger.finish("p0", 0) == ["again"]
