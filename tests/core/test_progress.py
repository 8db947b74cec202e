"""The progress record (streams/core/progress.py): ranges, merge, encoding, bounds."""

from __future__ import annotations

import random

import orjson
import pytest

from streams.core.progress import (
    LedgerView,
    PartitionProgress,
    RetryState,
    contains,
    decode,
    encode,
    merge,
    progress_key,
    ranges,
    union,
)


def test_offsets_become_the_fewest_ranges() -> None:
    assert ranges([]) == []
    assert ranges([3]) == [(3, 4)]
    assert ranges([3, 4, 5, 7, 9, 10]) == [(3, 6), (7, 8), (9, 11)]
    assert ranges([3, 3, 4]) == [(3, 5)]


def test_union_joins_overlapping_and_adjacent_ranges() -> None:
    assert union([(1, 3), (10, 12)], [(3, 5), (11, 20), (30, 31)]) == [(1, 5), (10, 20), (30, 31)]
    assert union([], []) == []


@pytest.mark.parametrize("seed", range(5))
def test_contains_agrees_with_a_set(seed: int) -> None:
    rng = random.Random(seed)
    offsets = sorted(rng.sample(range(500), 120))
    done = ranges(offsets)
    members = set(offsets)
    assert all(contains(done, o) == (o in members) for o in range(-2, 510))


def test_merge_folds_finished_ranges_into_the_acked_prefix() -> None:
    view = LedgerView(acked=10, finished=(11, 12, 13, 20), seen=25)
    progress = merge(None, view)
    assert progress.acked == 10
    assert progress.done == ((11, 14), (20, 21))
    assert progress.seen == 25
    assert progress.is_finished(9) and progress.is_finished(12) and progress.is_finished(20)
    assert not progress.is_finished(10) and not progress.is_finished(14)
    assert progress.was_seen(14) and not progress.was_seen(12) and not progress.was_seen(25)
    # Offset 10 finished too: everything up to 14 is now the prefix.
    later = merge(progress, LedgerView(acked=14, finished=(20,), seen=25))
    assert later.acked == 14 and later.done == ((20, 21),)


def test_merge_keeps_what_the_predecessor_knew_until_it_is_behind_the_prefix() -> None:
    """A new owner writes before the inherited finished offsets reach it: they must survive."""
    prior = PartitionProgress(
        committed=5,
        acked=8,
        seen=40,
        done=((12, 30),),
        retries={9: RetryState(step=0, attempts=2, due_ms=1_000)},
    )
    # The successor has taken offsets 5..9 so far (5..8 skipped as finished, 9 resumed).
    progress = merge(prior, LedgerView(acked=9, finished=(), seen=10), committed=7)
    assert progress.acked == 9
    assert progress.done == ((12, 30),)
    assert progress.retries == {9: RetryState(step=0, attempts=2, due_ms=1_000)}
    assert progress.seen == 40
    assert progress.committed == 7
    # Its own retry state for 9 wins; once 9 is finished, the retry is forgotten.
    mine = {9: RetryState(step=0, attempts=3, due_ms=2_000)}
    assert merge(prior, LedgerView(9, (), 10), mine).retries == mine
    done = merge(prior, LedgerView(acked=12, finished=(), seen=12), mine)
    assert done.acked == 30 and done.done == () and done.retries == {}


def test_a_record_is_ignored_when_the_partition_restarts_below_its_commit() -> None:
    progress = PartitionProgress(committed=100, acked=120)
    assert progress.applies_from(100) and progress.applies_from(130)
    assert not progress.applies_from(0)  # the group's offsets were reset to re-run
    assert PartitionProgress(acked=5).applies_from(0)


def test_encoding_round_trips_and_stays_small() -> None:
    progress = PartitionProgress(
        committed=1_000,
        acked=1_000,
        seen=21_000,
        done=tuple(ranges(o for o in range(1_001, 21_000) if o % 20)),
        retries={o: RetryState(step=0, attempts=1, due_ms=1_765_000_000_000) for o in (1_000,)},
    )
    raw = encode(progress)
    assert decode(raw) == progress
    assert orjson.loads(raw)["retries"] == {"1000": {"step": 0, "attempts": 1, "dueMs": 1765e9}}
    # 20 000 uncommitted events, every 20th still running: about 1 000 ranges, about 17 KB.
    assert len(raw) < 20 * 1024
    assert encode(PartitionProgress(acked=7)) == b'{"acked":7}'


def test_a_bad_record_is_described_not_raised() -> None:
    assert decode(None) is None
    assert decode(b"") is None  # a tombstone
    assert isinstance(decode(b"not json"), str)
    problem = decode(b'{"acked": 5, "done": [[9, 3]]}')
    assert isinstance(problem, str) and "[9, 3)" in problem
    assert isinstance(decode(b'{"acked": -1}'), str)


def test_ranges_are_normalized_on_decode() -> None:
    decoded = decode(b'{"acked": 1, "done": [[20, 30], [5, 8], [8, 9]]}')
    assert isinstance(decoded, PartitionProgress)
    assert decoded.done == ((5, 9), (20, 30))


def test_the_key_names_group_topic_and_partition() -> None:
    assert progress_key("returnhook", "order-status-changed", 3) == (
        b"returnhook|order-status-changed|3"
    )
