"""The outcome decision: SPEC §6's table as one pure function."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field

from models.delivery import Delivery
from models.settings import WorkflowStep
from models.webhook import ActionStatus, PatchResult, Severity
from streams.core.patching import (
    apply_patch,
    error_entry,
    is_step_error,
    normalize_patch,
    order_errors,
    without_step_errors,
)

CANCELLED_REASON = "the webhook cancelled the workflow"


class StepOutcome(BaseModel):
    action_status: ActionStatus
    patch: dict[str, Any] = Field(default_factory=dict)
    ignored_fields: list[str] = Field(default_factory=list)
    cancel_workflow: bool = False
    continue_workflow: bool = True
    error_reason: str | None = None


class Combined(BaseModel):
    action_status: ActionStatus | None
    cancel_workflow: bool
    error_reason: str | None


def combine(result: PatchResult) -> Combined:
    """Several results: cancel if any says so, the worst status, the reasons joined."""
    results = result.order_action_execution_results
    statuses = [r.action_status for r in results if r.action_status is not None]
    worst = max(statuses, key=lambda s: Severity[s]) if statuses else None
    reasons = [r.error_reason for r in results if r.error_reason]
    return Combined(
        action_status=worst,
        cancel_workflow=any(r.cancel_workflow for r in results),
        error_reason="; ".join(reasons) or None,
    )


def connector_not_found_reason(step: WorkflowStep, market_id: str | None) -> str:
    wanted = f"connectorId {step.connector_id!r}" if step.connector_id else "any connectorId"
    return (
        f"no {step.connector!r} connector found ({wanted}, market {market_id!r}) "
        "and the step has no Host property"
    )


def decide(
    step: WorkflowStep,
    delivery: Delivery | None,
    order: Mapping[str, Any],
    *,
    reference_id: str,
    occurred: str,
    not_found_reason: str | None = None,
) -> StepOutcome:
    """``delivery`` None means no endpoint resolved ("connector not found")."""
    if delivery is None:
        reason = not_found_reason or "connector not found"
        entry = error_entry(reason, None, reference_id, "Error", occurred)
        return StepOutcome(
            action_status="Error",
            patch={"errors": [*order_errors(order), entry]},
            error_reason=reason,
        )
    if not delivery.ok or delivery.result is None:
        return _failed(step, delivery, order, reference_id=reference_id, occurred=occurred)

    response_patch, ignored = normalize_patch(delivery.result.order_patch or {})
    combined = combine(delivery.result)
    patched = apply_patch(order, response_patch)
    if not combined.cancel_workflow:
        status = combined.action_status or "Success"
        patch = dict(response_patch)
        errors = order_errors(patched)
        if status == "Success" and any(is_step_error(e) for e in errors):
            patch["errors"] = without_step_errors(errors)
        return StepOutcome(
            action_status=status,
            patch=patch,
            ignored_fields=ignored,
            error_reason=combined.error_reason,
        )

    reason = combined.error_reason or CANCELLED_REASON
    stop = step.stop_on_error
    severity: ActionStatus = "Error" if stop else "Warning"
    patch = dict(response_patch)
    if stop and step.error_status:
        patch["status"] = step.error_status
    details = _details(delivery)
    entry = error_entry(reason, details, reference_id, severity, occurred)
    patch["errors"] = [*order_errors(patched), entry]
    return StepOutcome(
        action_status=severity,
        patch=patch,
        ignored_fields=ignored,
        cancel_workflow=True,
        continue_workflow=not stop,
        error_reason=reason,
    )


def _failed(
    step: WorkflowStep,
    delivery: Delivery,
    order: Mapping[str, Any],
    *,
    reference_id: str,
    occurred: str,
) -> StepOutcome:
    reason = delivery.reason or "the webhook delivery failed"
    stop = step.stop_on_error
    # Not sent at all (the settings cannot make a request): a configuration error like
    # "connector not found", so Error whatever stopOnError says; stopOnError still stops.
    severity: ActionStatus = "Error" if stop or delivery.attempts == 0 else "Warning"
    patch: dict[str, Any] = {}
    if stop and step.error_status:
        patch["status"] = step.error_status
    entry = error_entry(reason, _details(delivery), reference_id, severity, occurred)
    patch["errors"] = [*order_errors(order), entry]
    return StepOutcome(
        action_status=severity,
        patch=patch,
        continue_workflow=not stop,
        error_reason=reason,
    )


def _details(delivery: Delivery) -> str:
    status = f"HTTP {delivery.http_status}" if delivery.http_status is not None else "no response"
    plural = "attempt" if delivery.attempts == 1 else "attempts"
    return f"{status} after {delivery.attempts} {plural}"


def unwritable(
    step: WorkflowStep,
    order: Mapping[str, Any],
    reason: str,
    *,
    reference_id: str,
    occurred: str,
    delivery: Delivery | None,
) -> StepOutcome:
    """The step's record would not fit its topic: an Error, whatever the webhook answered.

    Nothing of the webhook's patch is written (downstream could not receive it), so the error
    entry (and ``ErrorStatus`` with stopOnError) is the whole patch; the workflow stops if the
    step stops on errors, as it would for a failed delivery.
    """
    stop = step.stop_on_error
    patch: dict[str, Any] = {}
    if stop and step.error_status:
        patch["status"] = step.error_status
    details = _details(delivery) if delivery is not None else None
    entry = error_entry(reason, details, reference_id, "Error", occurred)
    patch["errors"] = [*order_errors(order), entry]
    return StepOutcome(
        action_status="Error", patch=patch, continue_workflow=not stop, error_reason=reason
    )
