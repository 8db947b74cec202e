"""The outcome decision (streams/core/outcome.py): every row of SPEC §6's table, combined."""

from __future__ import annotations

from typing import Any

import pytest

from models.delivery import Delivery
from models.settings import STEP_NAME, WorkflowStep
from models.webhook import PatchResult
from streams.core.outcome import (
    CANCELLED_REASON,
    StepOutcome,
    combine,
    connector_not_found_reason,
    decide,
)

REF = "delivery-ref"
OCCURRED = "2024-05-01T10:00:00Z"
OTHER_ERROR = {"key": "ExportOrder", "message": "other step", "status": "New"}
OLD_STEP_ERROR = {"key": STEP_NAME, "message": "earlier failure", "status": "New"}
ORDER = {"id": "O-1", "status": "Returned", "tags": ["a"], "errors": [OTHER_ERROR, OLD_STEP_ERROR]}


def _step(stop: bool = False, error_status: str | None = None, **fields: Any) -> WorkflowStep:
    props = [{"key": "ErrorStatus", "value": error_status}] if error_status else []
    return WorkflowStep.model_validate({"stopOnError": stop, "properties": props, **fields})


def _ok(body: dict | None = None, status: int = 200, attempts: int = 1) -> Delivery:
    return Delivery(
        ok=True,
        attempts=attempts,
        http_status=status,
        duration_ms=12,
        result=PatchResult.model_validate(body or {}),
    )


def _cancel(reason: str | None = "out of stock", patch: dict | None = None, **extra: Any):
    result: dict[str, Any] = {"cancelWorkflow": True, **extra}
    if reason is not None:
        result["errorReason"] = reason
    body: dict[str, Any] = {"orderActionExecutionResults": [result]}
    if patch is not None:
        body["orderPatch"] = patch
    return _ok(body)


def _failed(reason: str | None = "HTTP 500", status: int | None = 500, attempts: int = 4):
    return Delivery(ok=False, attempts=attempts, http_status=status, reason=reason)


def _decide(
    step: WorkflowStep, delivery: Delivery | None, order: dict | None = None, **kw: Any
) -> StepOutcome:
    return decide(
        step, delivery, ORDER if order is None else order, reference_id=REF, occurred=OCCURRED, **kw
    )


def _entry(message: str, details: str | None, severity: str) -> dict[str, Any]:
    return {
        "key": STEP_NAME,
        "message": message,
        "details": details,
        "referenceId": REF,
        "severity": severity,
        "status": "New",
        "occurred": OCCURRED,
    }


# row 1: 2xx, no cancelWorkflow ----------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        None,
        {},
        {"orderActionExecutionResults": []},
        {"orderActionExecutionResults": {"actionStatus": "Success"}},
        {"orderActionExecutionResults": {"cancelWorkflow": False}},
    ],
)
def test_success_clears_this_steps_earlier_errors_only(body: dict | None) -> None:
    outcome = _decide(_step(), _ok(body))
    assert outcome.action_status == "Success"
    assert outcome.patch == {"errors": [OTHER_ERROR]}
    assert outcome.continue_workflow is True
    assert outcome.cancel_workflow is False
    assert outcome.error_reason is None


@pytest.mark.parametrize("stop", [True, False])
def test_success_without_earlier_step_errors_patches_nothing(stop: bool) -> None:
    order = {"id": "O-1", "errors": [OTHER_ERROR]}
    outcome = _decide(_step(stop, "Failed"), _ok(), order)
    assert outcome == StepOutcome(action_status="Success")


def test_success_on_an_order_without_errors() -> None:
    assert _decide(_step(), _ok(), {"id": "O-1"}).patch == {}
    assert _decide(_step(), _ok(), {"id": "O-1", "errors": None}).patch == {}


def test_success_clears_step_errors_in_any_casing() -> None:
    order = {"Errors": [{"Key": STEP_NAME.upper()}, OTHER_ERROR]}
    assert _decide(_step(), _ok(), order).patch == {"errors": [OTHER_ERROR]}


def test_success_applies_order_patch_and_clears_step_errors() -> None:
    body = {"OrderPatch": {"Tags": ["checked"], "Status": "ReturnApproved"}}
    outcome = _decide(_step(), _ok(body))
    assert outcome.action_status == "Success"
    assert outcome.patch == {
        "tags": ["checked"],
        "status": "ReturnApproved",
        "errors": [OTHER_ERROR],
    }


def test_success_with_a_patch_that_sets_errors_still_clears_step_errors() -> None:
    new_errors = [{"key": "Erp", "message": "fyi"}, {"key": STEP_NAME, "message": "x"}]
    outcome = _decide(_step(), _ok({"orderPatch": {"errors": new_errors}}))
    assert outcome.patch == {"errors": [{"key": "Erp", "message": "fyi"}]}


@pytest.mark.parametrize("status", ["Warning", "Error", "warning", "ERROR"])
def test_response_warning_or_error_is_honoured_and_keeps_step_errors(status: str) -> None:
    body = {
        "orderActionExecutionResults": {"actionStatus": status, "errorReason": "check it"},
        "orderPatch": {"tags": ["x"]},
    }
    outcome = _decide(_step(stop=True, error_status="Failed"), _ok(body))
    assert outcome.action_status == status.capitalize()
    assert outcome.patch == {"tags": ["x"]}
    assert outcome.continue_workflow is True
    assert outcome.cancel_workflow is False
    assert outcome.error_reason == "check it"


def test_success_reports_ignored_fields() -> None:
    body = {"orderPatch": {"id": "O-2", "marketId": "SWE", "origin": "Store"}}
    outcome = _decide(_step(), _ok(body), {"id": "O-1"})
    assert outcome.patch == {"orderOrigin": "Store"}
    assert outcome.ignored_fields == ["id", "marketId"]


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_any_2xx_is_success(status: int) -> None:
    assert _decide(_step(), _ok(status=status)).action_status == "Success"


# row 2: 2xx, cancelWorkflow, stopOnError --------------------------------------------------------


def test_cancel_with_stop_on_error() -> None:
    outcome = _decide(_step(stop=True, error_status="ReturnFailed"), _cancel())
    assert outcome.action_status == "Error"
    assert outcome.cancel_workflow is True
    assert outcome.continue_workflow is False
    assert outcome.error_reason == "out of stock"
    assert outcome.patch == {
        "status": "ReturnFailed",
        "errors": [
            OTHER_ERROR,
            OLD_STEP_ERROR,
            _entry("out of stock", "HTTP 200 after 1 attempt", "Error"),
        ],
    }


def test_cancel_with_stop_on_error_applies_the_patch_then_error_status() -> None:
    delivery = _cancel(patch={"Status": "FromWebhook", "Tags": ["rejected"]})
    outcome = _decide(_step(stop=True, error_status="ReturnFailed"), delivery)
    assert outcome.patch["status"] == "ReturnFailed"
    assert outcome.patch["tags"] == ["rejected"]
    assert list(outcome.patch) == ["status", "tags", "errors"]


def test_cancel_with_stop_on_error_without_error_status_keeps_the_patch_status() -> None:
    outcome = _decide(_step(stop=True), _cancel(patch={"status": "FromWebhook"}))
    assert outcome.patch["status"] == "FromWebhook"
    outcome = _decide(_step(stop=True), _cancel())
    assert "status" not in outcome.patch
    assert outcome.action_status == "Error"


def test_cancel_appends_to_the_errors_the_patch_set() -> None:
    delivery = _cancel(patch={"errors": [{"key": "Erp", "message": "bad sku"}]})
    outcome = _decide(_step(stop=True), delivery)
    assert outcome.patch["errors"] == [
        {"key": "Erp", "message": "bad sku"},
        _entry("out of stock", "HTTP 200 after 1 attempt", "Error"),
    ]


@pytest.mark.parametrize("reason", [None, ""])
def test_cancel_without_reason_uses_a_default(reason: str | None) -> None:
    outcome = _decide(_step(stop=True), _cancel(reason))
    assert outcome.error_reason == CANCELLED_REASON
    assert outcome.patch["errors"][-1]["message"] == CANCELLED_REASON


def test_cancel_ignores_the_responses_action_status() -> None:
    outcome = _decide(_step(stop=True), _cancel(actionStatus="Success"))
    assert outcome.action_status == "Error"
    outcome = _decide(_step(stop=False), _cancel(actionStatus="Error"))
    assert outcome.action_status == "Warning"


# row 3: 2xx, cancelWorkflow, no stopOnError ------------------------------------------------------


def test_cancel_without_stop_on_error_is_a_warning_and_continues() -> None:
    outcome = _decide(_step(stop=False, error_status="ReturnFailed"), _cancel(patch={"tags": []}))
    assert outcome.action_status == "Warning"
    assert outcome.cancel_workflow is True
    assert outcome.continue_workflow is True
    assert outcome.patch == {
        "tags": [],
        "errors": [
            OTHER_ERROR,
            OLD_STEP_ERROR,
            _entry("out of stock", "HTTP 200 after 1 attempt", "Warning"),
        ],
    }
    assert "status" not in outcome.patch


def test_cancel_reports_ignored_fields() -> None:
    outcome = _decide(_step(), _cancel(patch={"lines": []}))
    assert outcome.ignored_fields == ["lines"]


# rows 4, 5: delivery failed --------------------------------------------------------------------


def test_failed_with_stop_on_error() -> None:
    outcome = _decide(_step(stop=True, error_status="ReturnFailed"), _failed("HTTP 500: boom"))
    assert outcome.action_status == "Error"
    assert outcome.continue_workflow is False
    assert outcome.cancel_workflow is False
    assert outcome.error_reason == "HTTP 500: boom"
    assert outcome.patch == {
        "status": "ReturnFailed",
        "errors": [
            OTHER_ERROR,
            OLD_STEP_ERROR,
            _entry("HTTP 500: boom", "HTTP 500 after 4 attempts", "Error"),
        ],
    }


def test_failed_with_stop_on_error_without_error_status() -> None:
    outcome = _decide(_step(stop=True), _failed())
    assert outcome.action_status == "Error" and outcome.continue_workflow is False
    assert list(outcome.patch) == ["errors"]


def test_failed_without_stop_on_error_is_a_warning_and_never_sets_error_status() -> None:
    outcome = _decide(_step(stop=False, error_status="ReturnFailed"), _failed("timed out", None))
    assert outcome.action_status == "Warning"
    assert outcome.continue_workflow is True
    assert outcome.patch == {
        "errors": [
            OTHER_ERROR,
            OLD_STEP_ERROR,
            _entry("timed out", "no response after 4 attempts", "Warning"),
        ],
    }


@pytest.mark.parametrize(
    ("status", "attempts", "details"),
    [
        (400, 1, "HTTP 400 after 1 attempt"),
        (404, 1, "HTTP 404 after 1 attempt"),
        (503, 4, "HTTP 503 after 4 attempts"),
        (None, 4, "no response after 4 attempts"),
        (200, 1, "HTTP 200 after 1 attempt"),
        (None, 0, "no response after 0 attempts"),
    ],
)
def test_failure_details(status: int | None, attempts: int, details: str) -> None:
    outcome = _decide(_step(), _failed("x", status, attempts))
    assert outcome.patch["errors"][-1]["details"] == details


def test_failure_without_a_reason() -> None:
    outcome = _decide(_step(), _failed(None))
    assert outcome.error_reason == "the webhook delivery failed"


def test_ok_without_result_is_a_failure() -> None:
    outcome = _decide(_step(stop=True), Delivery(ok=True, attempts=1, http_status=200))
    assert outcome.action_status == "Error" and outcome.continue_workflow is False


def test_failure_never_applies_a_result_patch() -> None:
    delivery = Delivery(
        ok=False,
        attempts=1,
        http_status=200,
        reason="bad body",
        result=PatchResult.model_validate({"orderPatch": {"tags": ["x"]}}),
    )
    assert "tags" not in _decide(_step(), delivery).patch


# row 6: connector not found --------------------------------------------------------------------


@pytest.mark.parametrize("stop", [True, False])
def test_connector_not_found_is_an_error_that_continues(stop: bool) -> None:
    reason = connector_not_found_reason(_step(), "NOR")
    outcome = _decide(_step(stop, "ReturnFailed"), None, not_found_reason=reason)
    assert outcome.action_status == "Error"
    assert outcome.continue_workflow is True
    assert outcome.cancel_workflow is False
    assert outcome.error_reason == reason
    assert outcome.patch == {"errors": [OTHER_ERROR, OLD_STEP_ERROR, _entry(reason, None, "Error")]}


def test_connector_not_found_default_reason() -> None:
    assert _decide(_step(), None).error_reason == "connector not found"


def test_connector_not_found_reason_text() -> None:
    with_id = connector_not_found_reason(_step(connectorId="erp"), "NOR")
    assert "connectorId 'erp'" in with_id and "'NOR'" in with_id and "Host" in with_id
    assert "'Webhook'" in with_id
    assert "any connectorId" in connector_not_found_reason(_step(), None)


# combinations ----------------------------------------------------------------------------------


def _combined(*results: dict):
    return combine(PatchResult.model_validate({"orderActionExecutionResults": list(results)}))


@pytest.mark.parametrize(
    ("statuses", "worst"),
    [
        ([], None),
        ([None], None),
        (["Success"], "Success"),
        (["Success", "Warning"], "Warning"),
        (["Warning", "Success"], "Warning"),
        (["Success", "Error", "Warning"], "Error"),
        (["Error", "Warning"], "Error"),
        ([None, "Warning", None], "Warning"),
    ],
)
def test_worst_status(statuses: list[str | None], worst: str | None) -> None:
    assert _combined(*[{"actionStatus": s} for s in statuses]).action_status == worst


@pytest.mark.parametrize(
    ("cancels", "expected"),
    [
        ([], False),
        ([False], False),
        ([False, False], False),
        ([False, True], True),
        ([True, False, None], True),
    ],
)
def test_any_cancel(cancels: list[bool | None], expected: bool) -> None:
    assert _combined(*[{"cancelWorkflow": c} for c in cancels]).cancel_workflow is expected


def test_reasons_joined_skipping_empty_ones() -> None:
    combined = _combined({"errorReason": "a"}, {"errorReason": ""}, {}, {"errorReason": "b"})
    assert combined.error_reason == "a; b"
    assert _combined({"errorReason": ""}).error_reason is None


def test_several_results_with_one_cancel_and_stop_on_error() -> None:
    body = {
        "orderActionExecutionResults": [
            {"actionStatus": "Success", "errorReason": "line 1 ok"},
            {"actionStatus": "Warning", "cancelWorkflow": True, "errorReason": "line 2 missing"},
        ]
    }
    outcome = _decide(_step(stop=True, error_status="Failed"), _ok(body))
    assert outcome.action_status == "Error"
    assert outcome.cancel_workflow and not outcome.continue_workflow
    assert outcome.error_reason == "line 1 ok; line 2 missing"
    assert outcome.patch["errors"][-1]["message"] == "line 1 ok; line 2 missing"
    assert outcome.patch["status"] == "Failed"


def test_several_results_without_cancel_take_the_worst_status() -> None:
    body = {
        "orderActionExecutionResults": [
            {"actionStatus": "Success"},
            {"actionStatus": "Warning", "errorReason": "w"},
        ]
    }
    outcome = _decide(_step(), _ok(body))
    assert outcome.action_status == "Warning"
    assert outcome.error_reason == "w"
    assert "errors" not in outcome.patch


@pytest.mark.parametrize(
    "body",
    [
        {"orderActionExecutionResults": {"cancelWorkflow": True, "errorReason": "r"}},
        {"orderActionExecutionResults": [{"cancelWorkflow": True, "errorReason": "r"}]},
        {"OrderActionExecutionResults": {"CancelWorkflow": True, "ErrorReason": "r"}},
        {"OrderActionExecutionResults": [{"CancelWorkflow": True, "ErrorReason": "r"}]},
    ],
)
def test_single_object_or_list_in_either_casing(body: dict) -> None:
    outcome = _decide(_step(stop=True), _ok(body))
    assert outcome.action_status == "Error"
    assert outcome.error_reason == "r"
    assert not outcome.continue_workflow


# invariants ------------------------------------------------------------------------------------


def _all_deliveries() -> list[Delivery | None]:
    return [
        None,
        _ok(),
        _ok({"orderPatch": {"tags": ["x"]}}),
        _ok({"orderActionExecutionResults": {"actionStatus": "Warning"}}),
        _cancel(),
        _cancel(patch={"status": "X"}),
        _failed(),
        _failed(None, None, 0),
    ]


@pytest.mark.parametrize("delivery", _all_deliveries())
@pytest.mark.parametrize("stop", [True, False])
@pytest.mark.parametrize("error_status", [None, "ReturnFailed"])
def test_invariants(delivery: Delivery | None, stop: bool, error_status: str | None) -> None:
    order = {"id": "O-1", "errors": [OTHER_ERROR, OLD_STEP_ERROR]}
    snapshot = {"id": "O-1", "errors": [dict(OTHER_ERROR), dict(OLD_STEP_ERROR)]}
    outcome = _decide(_step(stop, error_status), delivery, order)
    assert order == snapshot, "the input order must not be mutated"
    # The workflow stops only when stopOnError is set, and only on a failure or a cancel.
    if not outcome.continue_workflow:
        assert stop and outcome.action_status == "Error"
    # Other keys' errors always survive.
    if "errors" in outcome.patch:
        assert OTHER_ERROR in outcome.patch["errors"]
    # ErrorStatus is set only when stopping.
    if outcome.patch.get("status") == "ReturnFailed":
        assert not outcome.continue_workflow
    # Any new entry is this step's, carries the reference, and matches the severity.
    entries = [e for e in outcome.patch.get("errors", []) if e.get("referenceId") == REF]
    if outcome.action_status == "Success":
        assert entries == []
    for entry in entries:
        assert entry["key"] == STEP_NAME and entry["severity"] == outcome.action_status
        assert entry["status"] == "New" and entry["occurred"] == OCCURRED
