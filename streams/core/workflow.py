"""Runs a tenant's return workflow for one accepted event.

Everything here is decided by pure functions; the only I/O is ``deliver``, injected by the shell
(the HTTP client in the worker, a scripted fake in unit tests).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel

from models.delivery import Delivery
from models.order import OrderView
from models.records import OrderEventRecord, OrderPatchRecord, StepRef
from models.settings import TenantSettings, WorkflowStep
from streams.core.decoder import Accepted
from streams.core.identity import created_at, delivery_id, record_id, source_event_id
from streams.core.outcome import StepOutcome, connector_not_found_reason, decide
from streams.core.patching import apply_patch
from streams.core.progress import RetryState
from streams.core.request import DEFAULT_USER_AGENT, InvalidRequest, build_request
from streams.core.resolution import resolve_endpoint, step_in_scope

Deliver = Callable[..., Awaitable[Delivery]]
"""``deliver(request)``; to continue a delivery another worker began, also
``first_attempt=`` (the next attempt's number) and ``not_before=`` (epoch seconds)."""
RUN_AFTER_SAVED_DELAY_S = 1.0


class Source(BaseModel):
    """Where the input record sits; its derived id stands in for a missing ``eventId``."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None = None


class Output(BaseModel):
    role: Literal["patches", "events"]
    key: str
    record: OrderPatchRecord | OrderEventRecord


class WorkflowOptions(BaseModel):
    env: Mapping[str, str] = {}
    max_attempts: int = 4
    user_agent: str = DEFAULT_USER_AGENT
    replay_id: str | None = None


async def run_workflow(
    accepted: Accepted,
    settings: TenantSettings,
    source: Source,
    deliver: Deliver,
    options: WorkflowOptions,
    *,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    clock: Callable[[], float] = time.time,
    resume: RetryState | None = None,
) -> list[Output]:
    """``resume``: where a retry of this event stood when its partition moved (progress record);
    that step's delivery continues at the next attempt and its due time."""
    event = accepted.event
    tenant = event.tenant_id
    source_id = source_event_id(event.event_id, source.topic, source.partition, source.offset)
    occurred = created_at(event.timestamp, source.timestamp_ms)
    order: dict[str, Any] = event.order
    outputs: list[Output] = []
    stopped_at: OrderEventRecord | None = None

    for index, step in enumerate(settings.return_workflow):
        if not step.is_webhook_return_step or not step.active:
            continue
        if stopped_at is not None:
            stopped_at.skipped_steps.append(index)
            continue
        view = accepted.order_view if order is event.order else OrderView.of(order)
        if not step_in_scope(step, view):
            continue
        delivery_key = delivery_id(tenant, source_id, index, options.replay_id)
        if step.run_after_order_is_saved:
            await _wait_until_saved(event.timestamp, source.timestamp_ms, sleep, clock)
        endpoint = resolve_endpoint(step, settings.connectors, view)
        delivery: Delivery | None = None
        if endpoint is not None:
            try:
                request = build_request(
                    step,
                    endpoint,
                    order,
                    accepted.return_order_form_id,
                    delivery_key,
                    env=options.env,
                    max_attempts=options.max_attempts,
                    user_agent=options.user_agent,
                    tenant_id=tenant,
                    step_index=index,
                )
            except InvalidRequest as exc:
                delivery = Delivery(ok=False, attempts=0, reason=f"not sent: {exc}")
            else:
                if resume is not None and resume.step == index:
                    delivery = await deliver(
                        request,
                        first_attempt=resume.attempts + 1,
                        not_before=resume.due_ms / 1000,
                    )
                else:
                    delivery = await deliver(request)
        outcome = decide(
            step,
            delivery,
            order,
            reference_id=delivery_key,
            occurred=occurred,
            not_found_reason=connector_not_found_reason(step, view.market_id),
        )
        order = apply_patch(order, outcome.patch)
        step_ref = StepRef(
            index=index,
            name=step.name,
            connector_id=_connector_id(step, endpoint.connector if endpoint else None),
        )
        common = {
            "tenant_id": tenant,
            "order_id": accepted.order_id,
            "source_event_id": source_id,
            "step": step_ref,
            "created_at": occurred,
            "replay_id": options.replay_id,
        }
        if outcome.patch:
            patch_record = OrderPatchRecord(
                id=record_id(delivery_key, "patch"),
                patch=outcome.patch,
                ignored_fields=outcome.ignored_fields,
                **common,
            )
            outputs.append(Output(role="patches", key=accepted.order_id, record=patch_record))
        event_record = _event_record(delivery_key, outcome, delivery, common)
        outputs.append(Output(role="events", key=accepted.order_id, record=event_record))
        if not outcome.continue_workflow:
            stopped_at = event_record
    return outputs


def _connector_id(step: WorkflowStep, connector: Any) -> str | None:
    return getattr(connector, "connector_id", None) or step.connector_id


def _event_record(
    delivery_key: str, outcome: StepOutcome, delivery: Delivery | None, common: dict[str, Any]
) -> OrderEventRecord:
    return OrderEventRecord(
        id=record_id(delivery_key, "event"),
        action_status=outcome.action_status,
        error_reason=outcome.error_reason,
        cancel_workflow=outcome.cancel_workflow,
        continue_workflow=outcome.continue_workflow,
        attempts=delivery.attempts if delivery else 0,
        http_status=delivery.http_status if delivery else None,
        duration_ms=delivery.duration_ms if delivery else 0,
        **common,
    )


async def _wait_until_saved(
    timestamp: datetime | None,
    record_timestamp_ms: int | None,
    sleep: Callable[[float], Awaitable[Any]],
    clock: Callable[[], float],
) -> None:
    """``runAfterOrderIsSaved``: call no sooner than 1 s after the change happened."""
    if timestamp is not None:
        moment = timestamp if timestamp.tzinfo else timestamp.replace(tzinfo=UTC)
        happened = moment.timestamp()
    elif record_timestamp_ms is not None and record_timestamp_ms >= 0:
        happened = record_timestamp_ms / 1000
    else:
        happened = clock()
    delay = happened + RUN_AFTER_SAVED_DELAY_S - clock()
    if delay > 0:
        await sleep(delay)
