import pytest

from streams.core.progress import PartitionProgress, RetryState
from streams.worker.offset_ledger import MAX_HOLES, Admission, OffsetLedger, PartitionLedger

NEW, LATE, DUPLICATE = Admission.NEW, Admission.LATE, Admission.DUPLICATE


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
    """faust re-fetches from the committed offset after a seek within one generation."""
    ledger: PartitionLedger[int] = PartitionLedger()
    assert ledger.add(4, 4) is NEW
    assert ledger.add(5, 5) is NEW
    assert ledger.add(5, 5) is DUPLICATE  # still pending: the first copy acknowledges in its turn
    assert ledger.add(4, 4) is DUPLICATE
    assert ledger.finish(4) == [4]
    assert ledger.finish(5) == [5]
    assert ledger.add(5, 5) is DUPLICATE  # already acknowledged: done, not redone
    assert len(ledger) == 0
    assert ledger.add(6, 6) is NEW


def test_an_offset_older_than_the_first_one_taken_is_a_redelivery() -> None:
    ledger: PartitionLedger[int] = PartitionLedger()
    assert ledger.add(10, 10) is NEW
    assert ledger.add(3, 3) is DUPLICATE


def test_a_record_dropped_and_fetched_again_after_later_ones_is_late_work() -> None:
    """Measured with faust 0.15.3: offsets 0-8, 10-12, then 0-12 again; 9 only the second time."""
    ledger: PartitionLedger[int] = PartitionLedger()
    for offset in [*range(9), 10, 11, 12]:
        assert ledger.add(offset, offset) is NEW
    assert ledger.finish(11) == []
    for offset in range(8):
        assert ledger.finish(offset) == [offset]
    for offset in range(9):
        assert ledger.add(offset, offset) is DUPLICATE
    assert ledger.add(9, 9) is LATE
    assert ledger.add(9, 9) is DUPLICATE
    assert ledger.add(10, 10) is DUPLICATE
    assert ledger.finish(8) == [8]
    assert ledger.head == 9  # 10 and 11 wait for it again
    assert ledger.finish(10) == []
    assert ledger.finish(9) == [9, 10, 11]
    assert ledger.finish(12) == [12]


def test_a_late_record_after_later_ones_were_acknowledged_still_runs() -> None:
    ledger: PartitionLedger[int] = PartitionLedger()
    for offset in (0, 2, 3):
        ledger.add(offset, offset)
    assert [ledger.finish(offset) for offset in (0, 2, 3)] == [[0], [2], [3]]
    assert ledger.add(1, 1) is LATE
    assert ledger.finish(1) == [1]
    assert len(ledger) == 0


def test_late_records_fill_a_wide_hole_one_by_one() -> None:
    ledger: PartitionLedger[int] = PartitionLedger()
    ledger.add(0, 0)
    ledger.add(5, 5)
    assert [ledger.add(offset, offset) for offset in (3, 1, 4, 2)] == [LATE] * 4
    assert ledger.add(3, 3) is DUPLICATE
    assert ledger.finish(5) == []
    assert [ledger.finish(offset) for offset in (0, 1, 2, 3)] == [[0], [1], [2], [3]]
    assert ledger.finish(4) == [4, 5]


def test_only_the_latest_holes_are_remembered() -> None:
    ledger: PartitionLedger[int] = PartitionLedger()
    for n in range(MAX_HOLES + 10):
        ledger.add(2 * n, n)  # every odd offset is a hole
    assert ledger.add(1, -1) is DUPLICATE  # too old to tell: taken as a redelivery
    assert ledger.add(2 * (MAX_HOLES + 9) - 1, -1) is LATE


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


def test_a_started_partition_takes_the_committed_offset_as_its_baseline() -> None:
    ledger: OffsetLedger[str, str] = OffsetLedger()
    ledger.start("p0", 10)
    # The consumer hands out 13 first (it dropped 10..12 and fetches them again later).
    assert ledger.add("p0", 13, "e13") is NEW
    for offset in (10, 11, 12):
        assert ledger.add("p0", offset, f"e{offset}") is LATE  # work, not a repeat
    assert ledger.add("p0", 9, "e9") is DUPLICATE  # below the committed offset: done before
    assert ledger.finish("p0", 13) == []
    released = [item for o in (10, 11, 12) for item in ledger.finish("p0", o)]
    assert released == ["e10", "e11", "e12", "e13"]


def test_without_a_start_the_first_offset_seen_is_the_baseline() -> None:
    ledger: OffsetLedger[str, str] = OffsetLedger()
    assert ledger.add("p0", 13, "e13") is NEW
    assert ledger.add("p0", 10, "e10") is DUPLICATE  # what start() prevents


def test_start_leaves_a_partition_that_already_holds_events_alone() -> None:
    ledger: OffsetLedger[str, str] = OffsetLedger()
    assert ledger.add("p0", 5, "e5") is NEW
    ledger.start("p0", 0)
    assert ledger.add("p0", 3, "e3") is DUPLICATE and len(ledger) == 1
    ledger.start("p1", None)  # never committed: the first offset seen stays the baseline
    assert ledger.add("p1", 7, "e7") is NEW


# --- the previous owner's progress record ----------------------------------------------------


def _prior() -> PartitionProgress:
    """Offsets below 12 finished, 14-15 and 18 finished beyond, 12 waiting on its 3rd attempt;
    the previous owner had taken everything up to 20."""
    return PartitionProgress(
        committed=10,
        acked=12,
        seen=21,
        done=((14, 16), (18, 19)),
        retries={12: RetryState(step=0, attempts=2, due_ms=5_000)},
    )


def test_offsets_the_previous_owner_finished_are_not_work_again() -> None:
    ledger: PartitionLedger[int] = PartitionLedger(prior=_prior())
    admitted = {offset: ledger.add(offset, offset) for offset in range(10, 24)}
    assert [o for o, a in admitted.items() if a is Admission.FINISHED] == [10, 11, 14, 15, 18]
    assert admitted[12] is NEW  # resumed where its retries stood
    assert [o for o, a in admitted.items() if a is Admission.RERUN] == [13, 16, 17, 19, 20]
    assert [o for o, a in admitted.items() if a is NEW] == [12, 21, 22, 23]
    assert all(a.taken for a in admitted.values())
    # Finished ones are acknowledged in their turn: never ahead of the unfinished 12.
    assert ledger.finish(10) == [10]
    assert ledger.finish(11) == [11]
    assert ledger.finish(14) == []
    assert ledger.head == 12
    assert ledger.view().acked == 12 and ledger.view().finished == (14,)
    assert ledger.finish(13) == []
    assert ledger.finish(12) == [12, 13, 14]


def test_a_record_from_before_an_offsets_reset_is_ignored() -> None:
    ledger: OffsetLedger[str, int] = OffsetLedger(prior=lambda tp: _prior())
    assert ledger.add("p0", 0, 0) is NEW  # below the commit the record knew: a deliberate re-run
    assert ledger.add("p0", 11, 11) is NEW
    resumed: OffsetLedger[str, int] = OffsetLedger(prior=lambda tp: _prior())
    assert resumed.add("p0", 10, 10) is Admission.FINISHED


def test_the_prior_is_asked_once_per_partition_and_assignment() -> None:
    asked: list[str] = []

    def prior(tp: str) -> PartitionProgress | None:
        asked.append(tp)
        return None

    ledger: OffsetLedger[str, int] = OffsetLedger(prior=prior)
    for offset in range(3):
        ledger.add("p0", offset, offset)
        ledger.add("p1", offset, offset)
    assert asked == ["p0", "p1"]
    ledger.clear()
    ledger.add("p0", 3, 3)
    assert asked == ["p0", "p1", "p0"]


def test_the_view_is_what_a_progress_record_needs() -> None:
    ledger: OffsetLedger[str, int] = OffsetLedger()
    for offset in range(5, 10):
        ledger.add("p0", offset, offset)
    ledger.finish("p0", 5)
    ledger.finish("p0", 7)
    ledger.finish("p0", 8)
    view, prior = ledger.views()["p0"]
    assert (view.acked, view.finished, view.seen) == (6, (7, 8), 10)
    assert prior is None
    for offset in (6, 9):
        ledger.finish("p0", offset)
    view, _ = ledger.views()["p0"]
    assert (view.acked, view.finished, view.seen) == (10, (), 10)


def test_the_group_commit_not_the_first_record_decides_whether_the_record_applies() -> None:
    """A record fetched before the seek (below the commit) must not make the previous owner's
    progress record look like one from before an offsets reset."""
    ledger: OffsetLedger[str, str] = OffsetLedger(prior=lambda tp: _prior())
    ledger.start("p0", 10)  # sought to the group's commit, as the record knew it
    assert ledger.add("p0", 5, "e5") is DUPLICATE  # a stale pre-seek record: below the baseline
    assert ledger.add("p0", 12, "e12") is NEW  # waiting on a retry: run
    assert ledger.add("p0", 14, "e14") is Admission.FINISHED  # finished beyond the commit
    reset: OffsetLedger[str, str] = OffsetLedger(prior=lambda tp: _prior())
    reset.start("p0", 3)  # the group was reset below the record's commit: run everything
    assert reset.add("p0", 14, "e14") is NEW
