"""Runs a tenant's return workflow for one accepted event.

Everything here is decided by pure functions; the only I/O is ``deliver``, injected by the shell
(the HTTP client in the worker, a scripted fake in unit tests).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, SkipValidation

from models.delivery import Delivery
from models.order import OrderView
from models.records import AttemptRecord, OrderEventRecord, OrderPatchRecord, StepRef
from models.secret_reference import SecretLookup
from models.settings import TenantSettings, WorkflowStep
from streams.core.decoder import Accepted
from streams.core.identity import created_at, delivery_id, record_id, source_event_id
from streams.core.outcome import StepOutcome, connector_not_found_reason, decide, unwritable
from streams.core.patching import apply_patch
from streams.core.progress import RetryState
from streams.core.record_size import encode_record, output_key, record_size
from streams.core.request import DEFAULT_USER_AGENT, InvalidRequest, WebhookRequest, build_request
from streams.core.resolution import resolve_endpoint, step_in_scope
from streams.core.trace_context import kafka_headers

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
    received_at: float | None = None
    """When the worker took the record (epoch seconds); None: when the step runs."""


class Output(BaseModel):
    role: Literal["patches", "events", "attempts"]
    """The topic role (topics.yaml) the record goes to."""
    key: str
    record: OrderPatchRecord | OrderEventRecord | AttemptRecord
    headers: list[tuple[str, bytes]] = []
    """Kafka headers of the record: the input's trace context, so a trace goes on downstream."""

    @cached_property
    def value(self) -> bytes:
        """The record as it is sent, encoded once: the size check and the producer share it."""
        return encode_record(self.record)

    @cached_property
    def wire_key(self) -> bytes | None:
        return output_key(self.key.encode())


class WorkflowOptions(BaseModel):
    secrets: SkipValidation[SecretLookup] = {}
    """``(tenant or SHARED, name) -> value``; a tenant's ``${NAME}`` reaches only its own."""
    max_attempts: int = 4
    user_agent: str = DEFAULT_USER_AGENT
    replay_id: str | None = None
    attempt_log: bool = True
    """One record per HTTP attempt on the attempts topic (RETURNHOOK_ATTEMPT_LOG)."""
    max_patch_record_bytes: int | None = None
    """The largest order-patch record the producer and the topic take (None: unchecked)."""
    max_event_record_bytes: int | None = None


async def run_workflow(
    accepted: Accepted,
    settings: TenantSettings,
    source: Source,
    deliver: Deliver,
    options: WorkflowOptions,
    *,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    clock: Callable[[], float] = time.time,
    on_future_timestamp: Callable[[], None] | None = None,
    resume: RetryState | None = None,
) -> list[Output]:
    """The step's outputs for one event; ``on_future_timestamp`` counts clamped timestamps.

    ``resume``: where a retry of this event stood when its partition moved (progress record);
    that step's delivery continues at the next attempt and its due time."""
    event = accepted.event
    tenant = event.tenant_id
    source_id = source_event_id(event.event_id, source.topic, source.partition, source.offset)
    occurred = created_at(event.timestamp, source.timestamp_ms)
    order: dict[str, Any] = event.order
    outputs: list[Output] = []
    headers = kafka_headers(accepted.trace)
    stopped_at: OrderEventRecord | None = None
    stopped_position = -1

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
            now = clock()
            received = source.received_at if source.received_at is not None else now
            delay, future = saved_wait(event.timestamp, source.timestamp_ms, received, now)
            if future and on_future_timestamp is not None:
                on_future_timestamp()
            if delay > 0:
                await sleep(delay)
        endpoint = resolve_endpoint(step, settings.connectors, view)
        delivery: Delivery | None = None
        request: WebhookRequest | None = None
        if endpoint is not None:
            try:
                request = build_request(
                    step,
                    endpoint,
                    order,
                    accepted.return_order_form_id,
                    delivery_key,
                    secrets=options.secrets,
                    max_attempts=options.max_attempts,
                    user_agent=options.user_agent,
                    tenant_id=tenant,
                    trace=accepted.trace,
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
        if options.attempt_log and delivery is not None and request is not None:
            outputs.extend(
                Output(role="attempts", key=accepted.order_id, record=record)
                for record in attempt_records(delivery, request, common)
            )
        key = accepted.order_id
        patch_output = _output(
            "patches", key, _patch_record(delivery_key, outcome, common), headers
        )
        oversize = _oversize(patch_output, options.max_patch_record_bytes)
        if oversize is not None:
            reason = (
                f"the order patch from the webhook makes an order-patch record of {oversize} "
                f"bytes, over the {options.max_patch_record_bytes}-byte limit of its topic; "
                "it was not written"
            )
            outcome = unwritable(
                step,
                order,
                reason,
                reference_id=delivery_key,
                occurred=occurred,
                delivery=delivery,
            )
            patch_record = _patch_record(delivery_key, outcome, common)
            patch_output = _output("patches", key, patch_record, headers)
            if _oversize(patch_output, options.max_patch_record_bytes) is not None:
                # The order's own errors are that large: no patch at all, the event says why.
                outcome = outcome.model_copy(update={"patch": {}})
                patch_output = None
        if patch_output is not None:
            order = apply_patch(order, outcome.patch)
            outputs.append(patch_output)
        event_record = _event_record(delivery_key, outcome, delivery, common)
        event_output = Output(role="events", key=key, record=event_record, headers=headers)
        oversize = _oversize(event_output, options.max_event_record_bytes)
        if oversize is not None:
            event_record = _cut_event(event_record, oversize, options.max_event_record_bytes)
            event_output = Output(role="events", key=key, record=event_record, headers=headers)
            if _oversize(event_output, options.max_event_record_bytes) is not None:
                raise OutputTooLarge(
                    f"the order-event of step {index} does not fit its topic's "
                    f"{options.max_event_record_bytes}-byte limit even without its reason "
                    "(the order id, tenant id or event id is that long)"
                )
        outputs.append(event_output)
        if not outcome.continue_workflow:
            stopped_at = event_record
            stopped_position = len(outputs) - 1
    if stopped_at is not None and stopped_at.skipped_steps:
        # The steps it skipped were added after its size check encoded it: encode it anew.
        stopped = outputs[stopped_position]
        outputs[stopped_position] = Output(
            role=stopped.role, key=stopped.key, record=stopped_at, headers=stopped.headers
        )
    return outputs


class OutputTooLarge(Exception):
    """An output record that no cut can fit: the input is dead-lettered instead."""


#: Characters of the webhook's reason kept in an order-event that was too large with all of it.
CUT_REASON_CHARS = 1000


def _patch_record(
    delivery_key: str, outcome: StepOutcome, common: dict[str, Any]
) -> OrderPatchRecord | None:
    if not outcome.patch:
        return None
    return OrderPatchRecord(
        id=record_id(delivery_key, "patch"),
        patch=outcome.patch,
        ignored_fields=outcome.ignored_fields,
        **common,
    )


def _output(
    role: Literal["patches", "events"],
    key: str,
    record: OrderPatchRecord | OrderEventRecord | None,
    headers: list[tuple[str, bytes]],
) -> Output | None:
    return None if record is None else Output(role=role, key=key, record=record, headers=headers)


def _oversize(output: Output | None, limit: int | None) -> int | None:
    """The record's size on the wire when it is over ``limit``, else None."""
    if output is None or limit is None:
        return None
    size = record_size(output.wire_key, output.value)
    return size if size > limit else None


def _cut_event(record: OrderEventRecord, size: int, limit: int | None) -> OrderEventRecord:
    """Only the webhook's reason can make an order-event large: cut it, and say so, as Error."""
    original = record.error_reason or ""
    reason = (
        f"the order-event would be {size} bytes, over the {limit}-byte limit of its topic; "
        f"the reason is cut to its first {CUT_REASON_CHARS} characters: "
        f"{original[:CUT_REASON_CHARS]}"
    )
    return record.model_copy(update={"action_status": "Error", "error_reason": reason})


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


def attempt_records(
    delivery: Delivery, request: WebhookRequest, common: dict[str, Any]
) -> list[AttemptRecord]:
    """The attempt log of one delivery: ids from the delivery id and the attempt number, so a
    redelivered input gives the same ids for the same attempts."""
    return [
        AttemptRecord(
            id=record_id(request.delivery_id, f"attempt-{result.attempt}"),
            delivery_id=request.delivery_id,
            idempotency_key=request.headers.get("Idempotency-Key", request.delivery_id),
            attempt=result.attempt,
            max_attempts=request.max_attempts,
            started_at=_iso(result.started_at),
            duration_ms=result.duration_ms,
            http_status=result.http_status,
            error_class=result.error_class,
            error=result.error,
            retry_at=_iso(result.retry_at) if result.retry_at is not None else None,
            host=request.origin,
            **{k: v for k, v in common.items() if k != "created_at"},
        )
        for result in delivery.attempt_log
    ]


def _iso(seconds: float) -> str:
    moment = datetime.fromtimestamp(seconds, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def saved_wait(
    timestamp: datetime | None,
    record_timestamp_ms: int | None,
    received_at: float,
    now: float,
) -> tuple[float, bool]:
    """``runAfterOrderIsSaved``: (seconds still to wait, whether the timestamp was in the future).

    The change happened at the event's ``timestamp`` (a naive one is read as UTC), else at the
    record's timestamp, else when we received the record. A time later than the reception is
    taken as the reception: the order cannot have been saved after we heard of it, and a clock
    that is ahead (or a local time without its offset) must not hold the partition. So the wait
    is at most 1 s from reception.
    """
    if timestamp is not None:
        moment = timestamp if timestamp.tzinfo else timestamp.replace(tzinfo=UTC)
        happened = moment.timestamp()
    elif record_timestamp_ms is not None and record_timestamp_ms >= 0:
        happened = record_timestamp_ms / 1000
    else:
        happened = received_at
    future = happened > received_at
    delay = min(happened, received_at) + RUN_AFTER_SAVED_DELAY_S - now
    return min(max(delay, 0.0), RUN_AFTER_SAVED_DELAY_S), future
