"""Issue 14 in the pure core: runAfterOrderIsSaved waits at most 1 s from reception, and an
output record that would not fit its topic becomes an Error outcome, never a failed send."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from streams.core.record_size import encode_record, record_size
from streams.core.workflow import (
    CUT_REASON_CHARS,
    OutputTooLarge,
    WorkflowOptions,
    saved_wait,
)
from tests.core.test_workflow import (
    SOURCE,
    TIMESTAMP_S,
    FakeTime,
    _accepted,
    _events,
    _ok,
    _order,
    _patches,
    _run,
    _script,
    _settings,
    _step,
)

NOW = 1_800_000_000.0


# runAfterOrderIsSaved: the wait is bounded -----------------------------------------------------


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        (datetime(2099, 1, 1, tzinfo=UTC), 1.0),  # far future: taken as now
        (datetime.fromtimestamp(NOW, UTC) + timedelta(hours=2), 1.0),  # a clock 2 h ahead
        (datetime.fromtimestamp(NOW, UTC) - timedelta(seconds=0.25), 0.75),
        (datetime.fromtimestamp(NOW, UTC) - timedelta(days=3), 0.0),
    ],
)
def test_the_wait_is_at_most_one_second_from_reception(
    timestamp: datetime, expected: float
) -> None:
    delay, _ = saved_wait(timestamp, None, received_at=NOW, now=NOW)
    assert delay == pytest.approx(expected)


def test_a_naive_timestamp_is_read_as_utc_and_a_local_one_ahead_of_utc_is_clamped() -> None:
    local_plus_2 = (datetime.fromtimestamp(NOW, UTC) + timedelta(hours=2)).replace(tzinfo=None)
    delay, future = saved_wait(local_plus_2, None, received_at=NOW, now=NOW)
    assert (delay, future) == (1.0, True)
    naive_past = (datetime.fromtimestamp(NOW, UTC) - timedelta(seconds=0.5)).replace(tzinfo=None)
    delay, future = saved_wait(naive_past, None, received_at=NOW, now=NOW)
    assert (delay, future) == (pytest.approx(0.5), False)


def test_time_spent_before_the_step_counts_towards_the_second() -> None:
    # Received at NOW with a future timestamp; the step starts 0.75 s later (an earlier step ran).
    delay, future = saved_wait(datetime(2099, 1, 1, tzinfo=UTC), None, NOW, now=NOW + 0.75)
    assert (delay, future) == (pytest.approx(0.25), True)
    assert saved_wait(None, None, NOW, now=NOW + 5)[0] == 0.0


def test_a_future_record_timestamp_is_clamped_too() -> None:
    future_ms = int((NOW + 7200) * 1000)
    assert saved_wait(None, future_ms, received_at=NOW, now=NOW) == (1.0, True)
    assert saved_wait(None, -1, received_at=NOW, now=NOW) == (1.0, False)


async def test_run_workflow_counts_a_future_timestamp_and_waits_one_second() -> None:
    fake = FakeTime(NOW)
    counted: list[int] = []
    deliver, calls = _script(_ok())
    source = SOURCE.model_copy(update={"received_at": NOW})
    await _run(
        _accepted(timestamp="2099-01-01T00:00:00Z"),
        _settings(_step(0, runAfterOrderIsSaved=True)),
        deliver,
        source=source,
        sleep=fake.sleep,
        clock=fake.clock,
        on_future_timestamp=lambda: counted.append(1),
    )
    assert fake.sleeps == [pytest.approx(1.0)] and len(calls) == 1
    assert counted == [1]


async def test_a_past_timestamp_is_not_counted() -> None:
    fake = FakeTime(TIMESTAMP_S + 0.5)
    counted: list[int] = []
    deliver, _ = _script(_ok())
    await _run(
        _accepted(),
        _settings(_step(0, runAfterOrderIsSaved=True)),
        deliver,
        source=SOURCE.model_copy(update={"received_at": TIMESTAMP_S + 0.5}),
        sleep=fake.sleep,
        clock=fake.clock,
        on_future_timestamp=lambda: counted.append(1),
    )
    assert fake.sleeps == [pytest.approx(0.5)] and counted == []


# outputs over the topic's limit ----------------------------------------------------------------

LIMIT = 20_000


def _limited(limit: int = LIMIT) -> WorkflowOptions:
    return WorkflowOptions(max_patch_record_bytes=limit, max_event_record_bytes=limit)


def _big_patch(size: int = 2 * LIMIT) -> dict:
    return {"orderPatch": {"tags": ["x" * size]}}


@pytest.mark.parametrize("stop", [True, False])
async def test_a_patch_over_the_limit_is_an_error_outcome_with_the_reason(stop: bool) -> None:
    deliver, _ = _script(_ok(_big_patch()), _ok())
    settings = _settings(_step(0, stop=stop, error_status="ReturnFailed"), _step(1))
    outputs = await _run(_accepted(), settings, deliver, _limited())
    first = _events(outputs)[0]
    assert first.action_status == "Error"
    assert "order-patch record of" in (first.error_reason or "")
    assert f"over the {LIMIT}-byte limit" in (first.error_reason or "")
    assert "not written" in (first.error_reason or "")
    assert first.continue_workflow is (not stop)
    # What is written instead: the error entry (and ErrorStatus on stopOnError), nothing of
    # the webhook's patch.
    patch = _patches(outputs)[0].patch
    assert "tags" not in patch
    assert patch["errors"][-1]["severity"] == "Error"
    assert patch["errors"][-1]["message"] == first.error_reason
    assert patch.get("status") == ("ReturnFailed" if stop else None)
    assert len(_events(outputs)) == (1 if stop else 2)
    for output in outputs:
        assert record_size(output.key.encode(), encode_record(output.record)) <= LIMIT


async def test_without_limits_nothing_is_checked() -> None:
    deliver, _ = _script(_ok(_big_patch()))
    outputs = await _run(_accepted(), _settings(_step(0)), deliver)
    assert _events(outputs)[0].action_status == "Success"
    assert _patches(outputs)[0].patch["tags"] == ["x" * 2 * LIMIT]


async def test_when_the_order_s_own_errors_do_not_fit_no_patch_is_written() -> None:
    errors = [{"key": "Other", "message": "m" * (2 * LIMIT)}]
    deliver, _ = _script(_ok(_big_patch()))
    outputs = await _run(
        _accepted(order=_order(errors=errors)), _settings(_step(0)), deliver, _limited()
    )
    assert _patches(outputs) == []
    [event] = _events(outputs)
    assert event.action_status == "Error" and "not written" in (event.error_reason or "")


async def test_an_event_over_the_limit_keeps_the_start_of_its_reason_as_an_error() -> None:
    reason = "r" * (2 * LIMIT)
    body = {"orderActionExecutionResults": [{"actionStatus": "Warning", "errorReason": reason}]}
    deliver, _ = _script(_ok(body))
    outputs = await _run(_accepted(), _settings(_step(0)), deliver, _limited())
    [event] = _events(outputs)
    assert event.action_status == "Error"
    text = event.error_reason or ""
    assert text.startswith("the order-event would be ") and f"{LIMIT}-byte limit" in text
    assert text.endswith("r" * CUT_REASON_CHARS) and len(text) < CUT_REASON_CHARS + 300
    assert record_size(b"o", encode_record(event)) <= LIMIT


async def test_an_event_that_cannot_fit_at_all_raises_for_a_dead_letter() -> None:
    deliver, _ = _script(_ok())
    accepted = _accepted(eventId="e" * (2 * LIMIT))
    with pytest.raises(OutputTooLarge, match="does not fit its topic"):
        await _run(accepted, _settings(_step(0)), deliver, _limited())
