"""The webhook's answer: Omnium's ``OmniumOrderWorkflowExecutionPatchResult`` (SPEC §6)."""

from __future__ import annotations

from enum import IntEnum
from typing import Any, Literal

from pydantic import Field, field_validator

from models.casing import CaseInsensitiveModel

ActionStatus = Literal["Success", "Warning", "Error"]


class Severity(IntEnum):
    """Ranks statuses so that several results combine to the worst one."""

    Success = 0
    Warning = 1
    Error = 2


class ActionResult(CaseInsensitiveModel):
    action_status: ActionStatus | None = None
    cancel_workflow: bool = False
    error_reason: str | None = None

    @field_validator("action_status", mode="before")
    @classmethod
    def _status_any_case(cls, value: Any) -> Any:
        if isinstance(value, str):
            for status in Severity:
                if value.lower() == status.name.lower():
                    return status.name
        if value is None or value == "":
            return None
        return value

    @field_validator("cancel_workflow", mode="before")
    @classmethod
    def _null_is_false(cls, value: Any) -> Any:
        return False if value is None else value


class PatchResult(CaseInsensitiveModel):
    order_action_execution_results: list[ActionResult] = Field(default_factory=list)
    order_patch: dict[str, Any] | None = None

    @field_validator("order_action_execution_results", mode="before")
    @classmethod
    def _single_or_list(cls, value: Any) -> Any:
        """The API model is a list; webhooks written by hand often send one object."""
        if value is None:
            return []
        if isinstance(value, dict):
            return [value]
        return value
