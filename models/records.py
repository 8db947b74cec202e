"""What returnhook writes (SPEC §7). Every id is derived from the input, never random."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from models.webhook import ActionStatus


class Record(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class StepRef(Record):
    index: int
    name: str
    connector_id: str | None = None


class OrderPatchRecord(Record):
    id: str
    tenant_id: str
    order_id: str
    source_event_id: str
    step: StepRef
    patch: dict[str, Any]
    ignored_fields: list[str] = Field(default_factory=list)
    created_at: str
    replay_id: str | None = None


class OrderEventRecord(Record):
    id: str
    tenant_id: str
    order_id: str
    source_event_id: str
    category: str = "Exported"
    step: StepRef
    action_status: ActionStatus
    error_reason: str | None = None
    cancel_workflow: bool = False
    continue_workflow: bool = True
    skipped_steps: list[int] = Field(default_factory=list)
    attempts: int = 0
    http_status: int | None = None
    duration_ms: int = 0
    created_at: str
    replay_id: str | None = None


class DeadLetterRecord(Record):
    reason: str
    error: str
    topic: str
    partition: int
    offset: int
    key: str | None = None
    value: str
    """The original value in base64: whole, or its first bytes if ``truncated`` names it."""
    headers: dict[str, str] = Field(default_factory=dict)
    value_size: int = 0
    """The original value's length in bytes."""
    value_sha256: str = ""
    """SHA-256 of the whole original value (hex): identifies it even when cut."""
    truncated: list[str] = Field(default_factory=list)
    """Fields cut so that the dead letter fits the topic (``value``, ``key``, ``headers``,
    ``error``); empty when the record is whole."""
