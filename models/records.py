"""What returnhook writes (SPEC §7). Every id is derived from the input, never random."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from models.delivery import ErrorClass
from models.webhook import ActionStatus


class Record(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class StepRef(Record):
    index: int
    name: str
    connector_id: str | None = None


class OrderPatchRecord(Record):
    """What to change on the order after one step, keyed by order id. ``id`` is stable for a
    redelivered input: deduplicate on it."""

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
    """The outcome of one step (Success, Warning, Error), keyed by order id. ``id`` is stable
    for a redelivered input: deduplicate on it."""

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
    """An input record that could not be processed, keyed by the input's key: the reason, and
    the original key, value (base64) and headers (text, or ``base64:…``) whole."""

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


class AttemptRecord(Record):
    """One HTTP attempt of one step, keyed by order id.

    ``httpStatus`` is set when the webhook answered; ``errorClass`` when the answer was missing
    or unusable (a 2xx whose body is not JSON has both). ``retryAt`` is when the next attempt is
    due, absent on the last one. ``host`` is the origin (scheme://host:port): no credentials,
    path or query ever appear in it.
    """

    id: str
    delivery_id: str
    idempotency_key: str
    tenant_id: str
    order_id: str
    source_event_id: str
    step: StepRef
    attempt: int
    max_attempts: int
    started_at: str
    duration_ms: int
    http_status: int | None = None
    error_class: ErrorClass | None = None
    error: str | None = None
    retry_at: str | None = None
    host: str
    replay_id: str | None = None
