"""What one delivery (all attempts of one request) came to: the input to the outcome decision."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from models.webhook import PatchResult

ErrorClass = Literal[
    "timeout",
    "connection_refused",
    "connection_error",
    "egress_refused",
    "unusable_url",
    "response_too_large",
    "body_not_json",
    "bad_response",
]
"""Why an attempt had no usable answer, as a word a dashboard or a query can group by."""


class AttemptResult(BaseModel):
    """One HTTP attempt as the client saw it: the raw data of one attempt-log record."""

    attempt: int
    started_at: float
    """Wall-clock seconds since the epoch (the client's clock)."""
    duration_ms: int
    http_status: int | None = None
    error_class: ErrorClass | None = None
    error: str | None = None
    retry_at: float | None = None
    """When the next attempt is due (wall-clock seconds), if one follows."""


class Delivery(BaseModel):
    ok: bool
    """A 2xx whose body is a valid (possibly empty) patch result."""
    attempts: int
    http_status: int | None = None
    duration_ms: int = 0
    result: PatchResult | None = None
    reason: str | None = None
    """Why it failed, specific enough to act on (shown in the order-event and the order errors)."""
    attempt_log: list[AttemptResult] = Field(default_factory=list)
    """Every attempt of this delivery, in order (the attempts topic is built from it)."""
