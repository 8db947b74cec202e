"""From the bytes of an input record to an event we can run, one to ignore, or a dead letter.

Pure, so that property tests can throw anything at it. Every rejection says specifically what
is wrong, with the field path, because someone has to fix the producer that wrote it.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson
from pydantic import BaseModel, ValidationError

from models.casing import get_ci
from models.event import OrderStatusChanged, is_return_status
from models.order import OrderView
from streams.core.response import describe
from streams.core.trace_context import HeaderPairs, trace_context

DEFAULT_MAX_RECORD_BYTES = 1024 * 1024

RejectReason = Literal[
    "empty_value",
    "record_too_large",
    "invalid_json",
    "not_an_object",
    "invalid_event",
    "invalid_order",
    "missing_order_id",
    "unknown_tenant",
    "invalid_tenant_settings",
    "output_too_large",
]


class Accepted(BaseModel):
    event: OrderStatusChanged
    order_view: OrderView
    order_id: str
    return_order_form_id: str | None
    trace: dict[str, str] = {}
    """The input's W3C ``traceparent``/``tracestate``: sent on every call, copied onto outputs."""


class Ignored(BaseModel):
    status: str | None


class Rejected(BaseModel):
    reason: RejectReason
    error: str


Decoded = Accepted | Ignored | Rejected


def decode(
    value: bytes | None,
    *,
    max_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    headers: HeaderPairs | None = None,
) -> Decoded:
    if not value:
        return Rejected(reason="empty_value", error="the record has no value")
    if len(value) > max_bytes:
        return Rejected(
            reason="record_too_large",
            error=f"the record is {len(value)} bytes, over the {max_bytes}-byte cap",
        )
    try:
        data: Any = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        return Rejected(reason="invalid_json", error=f"the value is not JSON: {exc}")
    if not isinstance(data, dict):
        kind = type(data).__name__
        return Rejected(reason="not_an_object", error=f"the value is a JSON {kind}, not an object")
    status = get_ci(data, "status")
    if isinstance(status, str) and status.strip() and not is_return_status(status):
        return Ignored(status=status)
    try:
        event = OrderStatusChanged.model_validate(data)
    except ValidationError as exc:
        return Rejected(reason="invalid_event", error=describe(exc))
    if not is_return_status(event.status):
        return Ignored(status=event.status)
    try:
        view = OrderView.of(event.order)
    except ValidationError as exc:
        return Rejected(reason="invalid_order", error=describe(exc, prefix="order."))
    order_id = event.order_id or view.id
    if not order_id:
        return Rejected(reason="missing_order_id", error="neither orderId nor order.id is set")
    return_form = event.return_order_form_id
    if return_form is None and view.return_order_forms:
        return_form = view.return_order_forms[-1].identifier
    return Accepted(
        event=event,
        order_view=view,
        order_id=order_id,
        return_order_form_id=return_form,
        trace=trace_context(headers),
    )
