"""run_workflow (streams/core/workflow.py) with a scripted fake ``deliver`` and a fake clock."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from models.delivery import Delivery
from models.records import OrderEventRecord, OrderPatchRecord
from models.settings import STEP_NAME, TenantSettings
from models.webhook import PatchResult
from streams.core.decoder import Accepted, decode
from streams.core.identity import delivery_id, record_id
from streams.core.request import WebhookRequest
from streams.core.response import parse_response
from streams.core.workflow import Output, Source, WorkflowOptions, run_workflow

TIMESTAMP = "2024-05-01T10:00:00Z"
TIMESTAMP_S = datetime(2024, 5, 1, 10, tzinfo=UTC).timestamp()
RECORD_MS = 1_714_600_000_000  # 2024-05-01T21:46:40Z
SOURCE = Source(topic="order-status-changed", partition=2, offset=41, timestamp_ms=RECORD_MS)
OTHER_ERROR = {"key": "ExportOrder", "message": "other", "status": "New"}
OLD_STEP_ERROR = {"key": STEP_NAME, "message": "earlier", "status": "New"}


# helpers --------------------------------------------------------------------------------------


def _order(**fields: Any) -> dict[str, Any]:
    order: dict[str, Any] = {
        "id": "O-1",
        "status": "Returned",
        "marketId": "NOR",
        "tags": ["returned"],
        "errors": [],
        "returnOrderForms": [{"returnId": "R-1"}, {"returnId": "R-2"}],
        "customField": {"kept": True},
    }
    order.update(fields)
    return order


def _accepted(order: dict | None = None, **event: Any) -> Accepted:
    data: dict[str, Any] = {
        "eventId": "E-1",
        "tenantId": "acme",
        "status": "Returned",
        "timestamp": TIMESTAMP,
        "order": order or _order(),
    }
    data.update(event)
    data = {k: v for k, v in data.items() if v is not None}
    result = decode(orjson.dumps(data))
    assert isinstance(result, Accepted), result
    return result


def _step(
    n: int | None = None,
    *,
    stop: bool = False,
    error_status: str | None = None,
    host: str | None = "auto",
    **fields: Any,
) -> dict[str, Any]:
    props: list[dict[str, Any]] = []
    if host == "auto":
        host = f"https://hooks.example/step{n}" if n is not None else None
    if host:
        props.append({"key": "Host", "value": host})
    if error_status:
        props.append({"key": "ErrorStatus", "value": error_status})
    props += fields.pop("properties", [])
    return {"name": STEP_NAME, "stopOnError": stop, "properties": props, **fields}


def _settings(*steps: dict[str, Any], connectors: list[dict] | None = None) -> TenantSettings:
    return TenantSettings.model_validate(
        {"tenantId": "acme", "connectors": connectors or [], "returnWorkflow": list(steps)}
    )


def _ok(body: dict | None = None, status: int = 200, attempts: int = 1) -> Delivery:
    return Delivery(
        ok=True,
        attempts=attempts,
        http_status=status,
        duration_ms=7,
        result=PatchResult.model_validate(body or {}),
    )


def _cancel(reason: str = "rejected by ERP", patch: dict | None = None) -> Delivery:
    body: dict[str, Any] = {
        "orderActionExecutionResults": {"cancelWorkflow": True, "errorReason": reason}
    }
    if patch:
        body["orderPatch"] = patch
    return _ok(body)


def _failed(reason: str = "HTTP 503 after 4 attempts", status: int | None = 503) -> Delivery:
    return Delivery(ok=False, attempts=4, http_status=status, duration_ms=21_000, reason=reason)


Deliver = Callable[[WebhookRequest], Awaitable[Delivery]]


def _script(*answers: Delivery) -> tuple[Deliver, list[WebhookRequest]]:
    """A fake webhook: answers in order, records every request it was given."""
    calls: list[WebhookRequest] = []
    queue = list(answers)

    async def deliver(request: WebhookRequest) -> Delivery:
        calls.append(request)
        assert queue, f"unexpected call to {request.url}"
        return queue.pop(0)

    return deliver, calls


async def _no_sleep(seconds: float) -> None:
    raise AssertionError(f"unexpected sleep({seconds})")


async def _run(
    accepted: Accepted,
    settings: TenantSettings,
    deliver: Deliver,
    options: WorkflowOptions | None = None,
    source: Source = SOURCE,
    **kw: Any,
) -> list[Output]:
    kw.setdefault("sleep", _no_sleep)
    kw.setdefault("clock", lambda: TIMESTAMP_S + 3600)
    return await run_workflow(
        accepted, settings, source, deliver, options or WorkflowOptions(), **kw
    )


def _events(outputs: list[Output]) -> list[OrderEventRecord]:
    return [o.record for o in outputs if isinstance(o.record, OrderEventRecord)]


def _patches(outputs: list[Output]) -> list[OrderPatchRecord]:
    return [o.record for o in outputs if isinstance(o.record, OrderPatchRecord)]


def _body(request: WebhookRequest) -> dict[str, Any]:
    return orjson.loads(request.body)


# single step ----------------------------------------------------------------------------------


async def test_success_without_changes_writes_only_an_event() -> None:
    deliver, calls = _script(_ok())
    outputs = await _run(_accepted(), _settings(_step(0)), deliver)
    assert len(calls) == 1
    assert [o.role for o in outputs] == ["events"]
    assert all(o.key == "O-1" for o in outputs)
    event = outputs[0].record
    assert isinstance(event, OrderEventRecord)
    key = delivery_id("acme", "E-1", 0)
    assert event.model_dump(mode="json", by_alias=True) == {
        "id": record_id(key, "event"),
        "tenantId": "acme",
        "orderId": "O-1",
        "sourceEventId": "E-1",
        "category": "Exported",
        "step": {"index": 0, "name": STEP_NAME, "connectorId": None},
        "actionStatus": "Success",
        "errorReason": None,
        "cancelWorkflow": False,
        "continueWorkflow": True,
        "skippedSteps": [],
        "attempts": 1,
        "httpStatus": 200,
        "durationMs": 7,
        "createdAt": TIMESTAMP,
        "replayId": None,
    }


async def test_the_request() -> None:
    deliver, calls = _script(_ok())
    options = WorkflowOptions(max_attempts=6, user_agent="OmniumOms/test")
    settings = _settings(
        _step(0, properties=[{"key": "X-Source", "value": "oms", "keyGroup": "RequestHeaders"}])
    )
    await _run(_accepted(), settings, deliver, options)
    (request,) = calls
    assert request.url == "https://hooks.example/step0"
    assert request.headers["Idempotency-Key"] == delivery_id("acme", "E-1", 0)
    assert request.delivery_id == delivery_id("acme", "E-1", 0)
    assert request.headers["X-Max-Delivery-Count"] == "6"
    assert request.max_attempts == 6
    assert request.headers["User-Agent"] == "OmniumOms/test"
    assert request.headers["X-Source"] == "oms"
    body = _body(request)
    assert body["Value"] == _order()
    assert body["ReturnOrderFormId"] == "R-2"  # the newest return form
    assert body["WorkflowStep"]["name"] == STEP_NAME


async def test_explicit_return_order_form_id_is_sent() -> None:
    deliver, calls = _script(_ok())
    await _run(_accepted(returnOrderFormId="R-1"), _settings(_step(0)), deliver)
    assert _body(calls[0])["ReturnOrderFormId"] == "R-1"


async def test_success_with_patch_writes_patch_then_event() -> None:
    deliver, _ = _script(
        _ok({"OrderPatch": {"Tags": ["checked"], "Status": "ReturnApproved", "lines": []}})
    )
    outputs = await _run(_accepted(), _settings(_step(0)), deliver)
    assert [o.role for o in outputs] == ["patches", "events"]
    (patch,) = _patches(outputs)
    key = delivery_id("acme", "E-1", 0)
    assert patch.model_dump(mode="json", by_alias=True) == {
        "id": record_id(key, "patch"),
        "tenantId": "acme",
        "orderId": "O-1",
        "sourceEventId": "E-1",
        "step": {"index": 0, "name": STEP_NAME, "connectorId": None},
        "patch": {"tags": ["checked"], "status": "ReturnApproved"},
        "ignoredFields": ["lines"],
        "createdAt": TIMESTAMP,
        "replayId": None,
    }
    assert patch.id != _events(outputs)[0].id


async def test_success_clears_this_steps_earlier_errors() -> None:
    deliver, _ = _script(_ok())
    order = _order(errors=[OTHER_ERROR, OLD_STEP_ERROR])
    outputs = await _run(_accepted(order), _settings(_step(0)), deliver)
    assert _patches(outputs)[0].patch == {"errors": [OTHER_ERROR]}


async def test_response_warning_is_honoured() -> None:
    deliver, _ = _script(
        _ok(
            {
                "orderActionExecutionResults": [
                    {"actionStatus": "Success"},
                    {"actionStatus": "Warning", "errorReason": "check"},
                ]
            }
        )
    )
    order = _order(errors=[OLD_STEP_ERROR])
    outputs = await _run(_accepted(order), _settings(_step(0)), deliver)
    (event,) = _events(outputs)
    assert event.action_status == "Warning" and event.error_reason == "check"
    assert event.continue_workflow is True
    assert _patches(outputs) == []  # earlier errors are only cleared on Success


async def test_cancel_with_stop_on_error() -> None:
    deliver, _ = _script(_cancel(patch={"tags": ["rejected"]}))
    settings = _settings(_step(0, stop=True, error_status="ReturnFailed"))
    outputs = await _run(_accepted(), settings, deliver)
    (patch,) = _patches(outputs)
    assert patch.patch["tags"] == ["rejected"]
    assert patch.patch["status"] == "ReturnFailed"
    (entry,) = patch.patch["errors"]
    assert entry == {
        "key": STEP_NAME,
        "message": "rejected by ERP",
        "details": "HTTP 200 after 1 attempt",
        "referenceId": delivery_id("acme", "E-1", 0),
        "severity": "Error",
        "status": "New",
        "occurred": TIMESTAMP,
    }
    (event,) = _events(outputs)
    assert event.action_status == "Error"
    assert event.cancel_workflow is True and event.continue_workflow is False
    assert event.error_reason == "rejected by ERP"


async def test_cancel_without_stop_on_error() -> None:
    deliver, _ = _script(_cancel())
    outputs = await _run(_accepted(), _settings(_step(0, error_status="ReturnFailed")), deliver)
    (patch,) = _patches(outputs)
    assert "status" not in patch.patch
    assert patch.patch["errors"][0]["severity"] == "Warning"
    (event,) = _events(outputs)
    assert event.action_status == "Warning"
    assert event.cancel_workflow is True and event.continue_workflow is True


@pytest.mark.parametrize(
    ("stop", "severity", "status"), [(True, "Error", "ReturnFailed"), (False, "Warning", None)]
)
async def test_delivery_failed(stop: bool, severity: str, status: str | None) -> None:
    deliver, _ = _script(_failed())
    settings = _settings(_step(0, stop=stop, error_status="ReturnFailed"))
    outputs = await _run(_accepted(), settings, deliver)
    (patch,) = _patches(outputs)
    assert patch.patch.get("status") == status
    assert patch.patch["errors"][-1]["severity"] == severity
    assert patch.patch["errors"][-1]["details"] == "HTTP 503 after 4 attempts"
    (event,) = _events(outputs)
    assert event.action_status == severity
    assert event.continue_workflow is not stop
    assert event.cancel_workflow is False
    assert (event.attempts, event.http_status, event.duration_ms) == (4, 503, 21_000)
    assert event.error_reason == "HTTP 503 after 4 attempts"


async def test_connector_not_found() -> None:
    deliver, calls = _script()
    settings = _settings(
        _step(0, host=None, connectorId="erp", stop=True),
        connectors=[{"connectorId": "other", "host": "https://x.example"}],
    )
    outputs = await _run(_accepted(), settings, deliver)
    assert calls == []
    (patch,) = _patches(outputs)
    (entry,) = patch.patch["errors"]
    assert entry["severity"] == "Error" and entry["details"] is None
    assert "connectorId 'erp'" in entry["message"] and "'NOR'" in entry["message"]
    (event,) = _events(outputs)
    assert event.action_status == "Error"
    assert event.continue_workflow is True  # even with stopOnError
    assert (event.attempts, event.http_status, event.duration_ms) == (0, None, 0)
    assert event.step.connector_id == "erp"


async def test_connector_endpoint_and_step_ref_connector_id() -> None:
    deliver, calls = _script(_ok())
    settings = _settings(
        _step(0, host=None),
        connectors=[
            {
                "connectorId": "erp",
                "host": "https://erp.example/returns",
                "bearerToken": "${ERP_TOKEN}",
                "timeout": "00:00:05",
            }
        ],
    )
    outputs = await _run(
        _accepted(), settings, deliver, WorkflowOptions(secrets={("acme", "ERP_TOKEN"): "tk"})
    )
    (request,) = calls
    assert request.url == "https://erp.example/returns"
    assert request.headers["Authorization"] == "Bearer tk"
    assert request.timeout_s == 5
    assert _events(outputs)[0].step.connector_id == "erp"


async def test_inline_host_with_connector_auth() -> None:
    deliver, calls = _script(_ok())
    settings = _settings(
        _step(0, connectorId="erp"),
        connectors=[
            {"connectorId": "erp", "host": "https://erp.example", "username": "u", "password": "p"}
        ],
    )
    await _run(_accepted(), settings, deliver)
    assert calls[0].url == "https://hooks.example/step0"
    assert calls[0].headers["Authorization"].startswith("Basic ")


# skipped steps --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "step",
    [
        _step(0, active=False),
        _step(0, enabledForMarkets=["SWE"]),
        _step(0, disabledForMarkets=["nor"]),
        _step(0, enabledForStores=["S-9"]),
        _step(0, disabledForTags=["RETURNED"]),
        _step(0, enabledForTags=["vip"]),
        _step(0, name="ExportOrder"),
    ],
)
async def test_inactive_out_of_scope_or_other_steps_write_nothing(step: dict) -> None:
    deliver, calls = _script()
    assert await _run(_accepted(), _settings(step), deliver) == []
    assert calls == []


async def test_no_steps() -> None:
    deliver, _ = _script()
    assert await _run(_accepted(), _settings(), deliver) == []


async def test_step_name_is_case_insensitive() -> None:
    deliver, calls = _script(_ok())
    await _run(_accepted(), _settings(_step(0, name=STEP_NAME.lower())), deliver)
    assert len(calls) == 1


# several steps --------------------------------------------------------------------------------


async def test_stop_on_error_skips_the_remaining_steps() -> None:
    deliver, calls = _script(_cancel())
    settings = _settings(
        _step(0, stop=True, error_status="ReturnFailed"),
        _step(1),
        _step(2, active=False),
        _step(3, name="ExportOrder"),
        _step(4, enabledForMarkets=["SWE"]),
    )
    outputs = await _run(_accepted(), settings, deliver)
    assert [r.url for r in calls] == ["https://hooks.example/step0"]
    assert [o.role for o in outputs] == ["patches", "events"]
    (event,) = _events(outputs)
    assert event.continue_workflow is False
    # Active return-webhook steps after the stop, in order (scope is not evaluated once stopped).
    assert event.skipped_steps == [1, 4]


async def test_failed_delivery_with_stop_on_error_skips_the_rest() -> None:
    deliver, calls = _script(_failed())
    settings = _settings(_step(0, stop=True), _step(1), _step(2))
    outputs = await _run(_accepted(), settings, deliver)
    assert len(calls) == 1
    assert _events(outputs)[0].skipped_steps == [1, 2]


async def test_the_encoded_order_event_carries_the_skipped_steps_under_size_limits() -> None:
    """The size check encodes the order-event before later steps are known to be skipped: what
    is sent must still list them."""
    deliver, _ = _script(_failed())
    settings = _settings(_step(0, stop=True), _step(1), _step(2))
    options = WorkflowOptions(max_patch_record_bytes=10**6, max_event_record_bytes=10**6)
    outputs = await _run(_accepted(), settings, deliver, options)
    (sent,) = [o for o in outputs if o.role == "events"]
    assert orjson.loads(sent.value)["skippedSteps"] == [1, 2]


@pytest.mark.parametrize(
    "first", [_cancel(), _failed(), _ok({"orderActionExecutionResults": {"actionStatus": "Error"}})]
)
async def test_without_stop_on_error_the_workflow_continues(first: Delivery) -> None:
    deliver, calls = _script(first, _ok())
    outputs = await _run(_accepted(), _settings(_step(0), _step(1)), deliver)
    assert len(calls) == 2
    events = _events(outputs)
    assert [e.step.index for e in events] == [0, 1]
    assert all(e.skipped_steps == [] for e in events)


async def test_connector_not_found_continues_to_the_next_step() -> None:
    deliver, calls = _script(_ok())
    outputs = await _run(_accepted(), _settings(_step(0, host=None, stop=True), _step(1)), deliver)
    assert [r.url for r in calls] == ["https://hooks.example/step1"]
    assert [e.action_status for e in _events(outputs)] == ["Error", "Success"]


async def test_the_next_step_sees_the_previous_patch() -> None:
    deliver, calls = _script(
        _ok({"orderPatch": {"Tags": ["returned", "checked"], "status": "ReturnApproved"}}), _ok()
    )
    await _run(_accepted(), _settings(_step(0), _step(1)), deliver)
    second = _body(calls[1])["Value"]
    assert second["tags"] == ["returned", "checked"]
    assert second["status"] == "ReturnApproved"
    assert second["customField"] == {"kept": True}
    assert _body(calls[0])["Value"]["tags"] == ["returned"]


async def test_the_next_steps_scope_sees_the_previous_patch() -> None:
    deliver, calls = _script(_ok({"orderPatch": {"tags": ["vip"]}}), _ok())
    settings = _settings(
        _step(0), _step(1, enabledForTags=["vip"]), _step(2, disabledForTags=["vip"])
    )
    await _run(_accepted(), settings, deliver)
    assert [r.url for r in calls] == ["https://hooks.example/step0", "https://hooks.example/step1"]


async def test_the_next_step_sees_the_previous_error_entry() -> None:
    deliver, calls = _script(_failed(), _ok())
    await _run(_accepted(_order(errors=[OTHER_ERROR])), _settings(_step(0), _step(1)), deliver)
    errors = _body(calls[1])["Value"]["errors"]
    assert errors[0] == OTHER_ERROR
    assert errors[1]["key"] == STEP_NAME and errors[1]["severity"] == "Warning"


async def test_a_later_success_clears_every_entry_with_the_step_key() -> None:
    """SPEC §6: 'this step's errors' are all errors keyed WebhookReturnWorkflowStep, so a later
    successful step of the same kind also clears an earlier step's fresh warning."""
    deliver, _ = _script(_failed(), _ok())
    outputs = await _run(
        _accepted(_order(errors=[OTHER_ERROR])), _settings(_step(0), _step(1)), deliver
    )
    patches = _patches(outputs)
    assert [p.step.index for p in patches] == [0, 1]
    assert patches[1].patch == {"errors": [OTHER_ERROR]}


async def test_outputs_are_in_step_order_with_distinct_ids() -> None:
    deliver, _ = _script(_ok({"orderPatch": {"tags": []}}), _ok({"orderPatch": {"name": "n"}}))
    outputs = await _run(_accepted(), _settings(_step(0), _step(1)), deliver)
    assert [(o.role, o.record.step.index) for o in outputs] == [
        ("patches", 0),
        ("events", 0),
        ("patches", 1),
        ("events", 1),
    ]
    assert len({o.record.id for o in outputs}) == 4


async def test_step_index_is_the_position_in_the_workflow() -> None:
    deliver, calls = _script(_ok())
    settings = _settings(_step(0, name="ExportOrder"), _step(1, active=False), _step(2))
    outputs = await _run(_accepted(), settings, deliver)
    assert _events(outputs)[0].step.index == 2
    assert calls[0].delivery_id == delivery_id("acme", "E-1", 2)


async def test_the_input_order_is_not_mutated() -> None:
    accepted = _accepted(_order(errors=[OLD_STEP_ERROR]))
    before = orjson.dumps(accepted.event.order)
    deliver, _ = _script(_ok({"orderPatch": {"tags": ["x"]}}), _cancel())
    await _run(accepted, _settings(_step(0), _step(1)), deliver)
    assert orjson.dumps(accepted.event.order) == before


# ids ------------------------------------------------------------------------------------------


async def _run_twice(options_a: WorkflowOptions, options_b: WorkflowOptions, **event: Any):
    settings = _settings(_step(0), _step(1))
    results = []
    for options in (options_a, options_b):
        deliver, calls = _script(_ok({"orderPatch": {"tags": ["a"]}}), _failed())
        outputs = await _run(_accepted(**event), settings, deliver, options)
        results.append((outputs, calls))
    return results


async def test_ids_are_stable_across_runs() -> None:
    (first, calls_a), (second, calls_b) = await _run_twice(WorkflowOptions(), WorkflowOptions())
    assert [o.model_dump() for o in first] == [o.model_dump() for o in second]
    assert [c.headers["Idempotency-Key"] for c in calls_a] == [
        c.headers["Idempotency-Key"] for c in calls_b
    ]
    for output in first:
        assert uuid.UUID(output.record.id).version == 5


async def test_ids_are_stable_without_event_id() -> None:
    (first, _), (second, _) = await _run_twice(WorkflowOptions(), WorkflowOptions(), eventId=None)
    assert [o.record.id for o in first] == [o.record.id for o in second]
    assert first[0].record.source_event_id == "order-status-changed/2/41"


async def test_replay_ids_differ_and_are_recorded() -> None:
    (first, calls_a), (replayed, calls_b) = await _run_twice(
        WorkflowOptions(), WorkflowOptions(replay_id="replay-7")
    )
    assert not {o.record.id for o in first} & {o.record.id for o in replayed}
    assert calls_a[0].delivery_id != calls_b[0].delivery_id
    assert calls_b[0].delivery_id == delivery_id("acme", "E-1", 0, "replay-7")
    assert all(o.record.replay_id == "replay-7" for o in replayed)
    assert all(o.record.replay_id is None for o in first)
    assert [o.record.source_event_id for o in replayed] == ["E-1"] * len(replayed)


async def test_error_entry_reference_is_the_delivery_id() -> None:
    deliver, calls = _script(_failed())
    outputs = await _run(_accepted(), _settings(_step(0)), deliver)
    assert _patches(outputs)[0].patch["errors"][-1]["referenceId"] == calls[0].delivery_id


# createdAt ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("timestamp", "record_ms", "expected"),
    [
        ("2024-05-01T12:00:00+02:00", RECORD_MS, "2024-05-01T10:00:00Z"),
        (None, RECORD_MS, "2024-05-01T21:46:40Z"),
        (None, None, "1970-01-01T00:00:00Z"),
    ],
)
async def test_created_at(timestamp: str | None, record_ms: int | None, expected: str) -> None:
    deliver, _ = _script(_failed())
    source = SOURCE.model_copy(update={"timestamp_ms": record_ms})
    accepted = _accepted(timestamp=timestamp) if timestamp else _accepted(timestamp=None)
    outputs = await _run(accepted, _settings(_step(0)), deliver, source=source, clock=lambda: 0.0)
    assert {o.record.created_at for o in outputs} == {expected}
    assert _patches(outputs)[0].patch["errors"][-1]["occurred"] == expected


# runAfterOrderIsSaved -------------------------------------------------------------------------


class FakeTime:
    def __init__(self, now: float) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.mark.parametrize(("now_offset", "expected_sleep"), [(0.0, 1.0), (0.25, 0.75)])
async def test_run_after_order_is_saved_waits_until_one_second_after(
    now_offset: float, expected_sleep: float
) -> None:
    fake = FakeTime(TIMESTAMP_S + now_offset)
    order_of_things: list[str] = []

    async def deliver(request: WebhookRequest) -> Delivery:
        order_of_things.append(f"deliver at {fake.now - TIMESTAMP_S:.2f}")
        return _ok()

    settings = _settings(_step(0, runAfterOrderIsSaved=True))
    await _run(_accepted(), settings, deliver, sleep=fake.sleep, clock=fake.clock)
    assert fake.sleeps == [pytest.approx(expected_sleep)]
    assert order_of_things == ["deliver at 1.00"]


async def test_run_after_order_is_saved_does_not_wait_when_already_past() -> None:
    fake = FakeTime(TIMESTAMP_S + 5)
    deliver, calls = _script(_ok())
    settings = _settings(_step(0, runAfterOrderIsSaved=True))
    await _run(_accepted(), settings, deliver, sleep=fake.sleep, clock=fake.clock)
    assert fake.sleeps == [] and len(calls) == 1


async def test_run_after_order_is_saved_uses_the_record_timestamp_without_event_timestamp() -> None:
    fake = FakeTime(RECORD_MS / 1000 + 0.5)
    deliver, _ = _script(_ok())
    settings = _settings(_step(0, runAfterOrderIsSaved=True))
    await _run(_accepted(timestamp=None), settings, deliver, sleep=fake.sleep, clock=fake.clock)
    assert fake.sleeps == [pytest.approx(0.5)]


async def test_run_after_order_is_saved_without_any_timestamp_waits_one_second() -> None:
    fake = FakeTime(1000.0)
    deliver, _ = _script(_ok())
    source = SOURCE.model_copy(update={"timestamp_ms": None})
    settings = _settings(_step(0, runAfterOrderIsSaved=True))
    await _run(
        _accepted(timestamp=None),
        settings,
        deliver,
        source=source,
        sleep=fake.sleep,
        clock=fake.clock,
    )
    assert fake.sleeps == [pytest.approx(1.0)]


async def test_only_steps_that_ask_for_it_wait() -> None:
    fake = FakeTime(TIMESTAMP_S)
    deliver, _ = _script(_ok(), _ok())
    settings = _settings(_step(0), _step(1, runAfterOrderIsSaved=True))
    await _run(_accepted(), settings, deliver, sleep=fake.sleep, clock=fake.clock)
    assert fake.sleeps == [pytest.approx(1.0)]


async def test_skipped_steps_do_not_wait() -> None:
    deliver, _ = _script()
    settings = _settings(
        _step(0, runAfterOrderIsSaved=True, active=False),
        _step(1, runAfterOrderIsSaved=True, enabledForMarkets=["SWE"]),
    )
    assert await _run(_accepted(), settings, deliver, clock=lambda: TIMESTAMP_S) == []


# missing environment --------------------------------------------------------------------------


@pytest.mark.parametrize("stop", [True, False])
async def test_a_missing_secret_is_a_step_error_without_calling(stop: bool) -> None:
    """Not sent at all is a configuration error: Error whatever stopOnError says."""
    deliver, calls = _script()
    settings = _settings(
        _step(0, host=None, stop=stop, error_status="ReturnFailed"),
        _step(1, host=None),
        connectors=[{"host": "https://erp.example", "bearerToken": "${ERP_TOKEN}"}],
    )
    options = WorkflowOptions(secrets={("beta", "ERP_TOKEN"): "planted"})
    outputs = await _run(_accepted(), settings, deliver, options)
    assert calls == []
    first = _events(outputs)[0]
    assert first.action_status == "Error"
    assert first.error_reason == "not sent: secret ERP_TOKEN is not available to tenant 'acme'"
    assert (first.attempts, first.http_status) == (0, None)
    assert first.continue_workflow is not stop
    assert first.skipped_steps == ([1] if stop else [])
    entry = _patches(outputs)[0].patch["errors"][-1]
    assert entry["details"] == "no response after 0 attempts"
    assert entry["severity"] == "Error"
    assert _patches(outputs)[0].patch.get("status") == ("ReturnFailed" if stop else None)
    assert (
        "planted" not in orjson.dumps([o.record.model_dump(mode="json") for o in outputs]).decode()
    )


async def test_a_bad_url_written_past_publish_is_a_step_error_and_the_next_step_runs() -> None:
    deliver, calls = _script(_ok())
    settings = _settings(
        _step(0, host="https://example.invalid"), _step(1, host="https://good.example/")
    )
    # as if produced straight onto the topic: settings publish refuses this URL
    settings.return_workflow[0].properties[0].value = "http://example.invalid:99999/x"
    outputs = await _run(_accepted(), settings, deliver, WorkflowOptions())
    first, second = _events(outputs)
    assert first.action_status == "Error"
    assert "port" in (first.error_reason or "") and "99999" in (first.error_reason or "")
    assert second.action_status == "Success"
    assert [c.url for c in calls] == ["https://good.example/"]


async def test_a_secret_present_is_resolved() -> None:
    deliver, calls = _script(_ok())
    settings = _settings(_step(0, host="https://${HOOK_HOST}/r"))
    options = WorkflowOptions(secrets={("acme", "HOOK_HOST"): "h.example"})
    await _run(_accepted(), settings, deliver, options)
    assert calls[0].url == "https://h.example/r"


# records serialise as the contract says ---------------------------------------------------------


async def test_records_serialise_in_camel_case() -> None:
    deliver, _ = _script(_cancel(patch={"tags": ["x"]}))
    outputs = await _run(_accepted(), _settings(_step(0, stop=True), _step(1)), deliver)
    patch, event = (o.record.model_dump(mode="json", by_alias=True) for o in outputs)
    assert set(patch) >= {
        "id",
        "tenantId",
        "orderId",
        "sourceEventId",
        "step",
        "patch",
        "createdAt",
    }
    assert set(event) >= {
        "id",
        "tenantId",
        "orderId",
        "sourceEventId",
        "category",
        "step",
        "actionStatus",
        "errorReason",
        "cancelWorkflow",
        "continueWorkflow",
        "attempts",
        "httpStatus",
        "durationMs",
        "createdAt",
        "skippedSteps",
    }
    assert event["skippedSteps"] == [1]
    assert event["step"] == {"index": 0, "name": STEP_NAME, "connectorId": None}


async def test_a_patch_the_next_step_cannot_read_is_a_failed_delivery_not_a_crash() -> None:
    """Regression: ``errors: [{"key": 5}]`` used to pass parse_response and then crash the next
    step's OrderView. Delivered the way the client does (parse_response), it is a bad body."""
    calls: list[WebhookRequest] = []

    async def deliver(request: WebhookRequest) -> Delivery:
        calls.append(request)
        body = b'{"orderPatch": {"errors": [{"key": 5}]}}' if len(calls) == 1 else b""
        parsed = parse_response(body)
        if isinstance(parsed, str):
            return Delivery(ok=False, attempts=1, http_status=200, reason=parsed)
        return Delivery(ok=True, attempts=1, http_status=200, result=parsed)

    outputs = await _run(_accepted(), _settings(_step(0), _step(1)), deliver)
    assert len(calls) == 2
    first, second = _events(outputs)
    assert first.action_status == "Warning"
    assert first.error_reason is not None and "orderPatch.errors.0.key" in first.error_reason
    assert second.action_status == "Success"


# the attempt log ------------------------------------------------------------------------------


def _flapped() -> Delivery:
    """500, then a dropped connection, then 200: what the client reports for a flapping host."""
    from models.delivery import AttemptResult

    t0 = TIMESTAMP_S + 60
    return Delivery(
        ok=True,
        attempts=3,
        http_status=200,
        duration_ms=6_100,
        result=PatchResult(),
        attempt_log=[
            AttemptResult(
                attempt=1, started_at=t0, duration_ms=40, http_status=500, retry_at=t0 + 1.04
            ),
            AttemptResult(
                attempt=2,
                started_at=t0 + 1.04,
                duration_ms=3,
                error_class="connection_error",
                error="ServerDisconnectedError",
                retry_at=t0 + 6.043,
            ),
            AttemptResult(attempt=3, started_at=t0 + 6.043, duration_ms=20, http_status=200),
        ],
    )


async def test_one_attempt_record_per_attempt_keyed_by_order() -> None:
    from models.records import AttemptRecord

    deliver, calls = _script(_flapped())
    settings = _settings(_step(0, host="https://user:pw@hooks.example:8443/step0?token=abc"))
    outputs = await _run(_accepted(), settings, deliver)
    assert [o.role for o in outputs] == ["attempts"] * 3 + ["events"]
    attempts = [o.record for o in outputs if isinstance(o.record, AttemptRecord)]
    key = delivery_id("acme", "E-1", 0)
    assert [(a.attempt, a.max_attempts, a.http_status, a.error_class) for a in attempts] == [
        (1, 4, 500, None),
        (2, 4, None, "connection_error"),
        (3, 4, 200, None),
    ]
    first = attempts[0]
    assert first.delivery_id == first.idempotency_key == key
    assert calls[0].headers["Idempotency-Key"] == key
    assert (first.tenant_id, first.order_id, first.source_event_id) == ("acme", "O-1", "E-1")
    assert (first.step.index, first.step.name) == (0, STEP_NAME)
    assert first.started_at == "2024-05-01T10:01:00.000Z"
    assert first.retry_at == attempts[1].started_at == "2024-05-01T10:01:01.040Z"
    assert attempts[2].retry_at is None
    # The origin only: no user:password, path or query.
    assert {a.host for a in attempts} == {"https://hooks.example:8443"}
    assert [a.id for a in attempts] == [record_id(key, f"attempt-{n}") for n in (1, 2, 3)]
    assert all(o.key == "O-1" for o in outputs)


async def test_attempt_records_carry_the_replay_id_and_can_be_switched_off() -> None:
    from models.records import AttemptRecord

    deliver, _ = _script(_flapped(), _flapped())
    replayed = await _run(
        _accepted(), _settings(_step(0)), deliver, WorkflowOptions(replay_id="replay-1")
    )
    attempts = [o.record for o in replayed if isinstance(o.record, AttemptRecord)]
    assert {a.replay_id for a in attempts} == {"replay-1"}
    assert attempts[0].delivery_id == delivery_id("acme", "E-1", 0, "replay-1")
    off = await _run(_accepted(), _settings(_step(0)), deliver, WorkflowOptions(attempt_log=False))
    assert [o.role for o in off] == ["events"]


async def test_no_attempt_records_when_nothing_was_sent() -> None:
    deliver, calls = _script()
    outputs = await _run(_accepted(), _settings(_step(0, host=None)), deliver)  # no connector
    assert calls == [] and [o.role for o in outputs] == ["patches", "events"]  # error entry


async def test_a_moved_retry_continues_in_its_own_step_only() -> None:
    """The progress record says step 1 had made 2 attempts: step 1 continues at attempt 3 and
    its due time; step 0 is called as usual (its outcome was not yet produced)."""
    from streams.core.progress import RetryState

    calls: list[tuple[int, dict[str, Any]]] = []

    async def deliver(request: WebhookRequest, **kw: Any) -> Delivery:
        calls.append((request.step_index, kw))
        return _ok()

    resume = RetryState(step=1, attempts=2, due_ms=1_700_000_004_500)
    outputs = await _run(_accepted(), _settings(_step(0), _step(1)), deliver, resume=resume)
    assert calls == [(0, {}), (1, {"first_attempt": 3, "not_before": 1_700_000_004.5})]
    assert len(_events(outputs)) == 2
