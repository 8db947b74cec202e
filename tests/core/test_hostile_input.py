"""Property tests: whatever bytes arrive, the pipeline answers with a record, never a crash.

``decode`` either accepts an event or names a specific reason; an accepted event runs through
``run_workflow`` with webhooks answering anything at all, and every output serialises.
"""

from __future__ import annotations

import asyncio
import base64
import os
from collections import Counter

import orjson
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from models.delivery import Delivery
from models.settings import TenantSettings
from streams.core.dead_letters import dead_letter_record
from streams.core.decoder import Accepted, Ignored, Rejected, decode
from streams.core.request import WebhookRequest
from streams.core.response import parse_response
from streams.core.workflow import Source, WorkflowOptions, run_workflow

# 1 000 in the normal suite; `HOSTILE_EXAMPLES=10000 pytest tests/test_hostile_input.py` for more.
EXAMPLES = int(os.environ.get("HOSTILE_EXAMPLES", "1000"))

REASONS = {
    "empty_value",
    "record_too_large",
    "invalid_json",
    "not_an_object",
    "invalid_event",
    "invalid_order",
    "missing_order_id",
}

VALID = {
    "eventId": "e-1",
    "tenantId": "acme",
    "status": "Returned",
    "timestamp": "2026-11-29T10:00:00Z",
    "order": {
        "id": "o-1",
        "marketId": "NOR",
        "tags": ["vip"],
        "properties": [{"key": "k", "value": "v"}],
        "errors": [],
        "returnOrderForms": [{"returnId": "r-1"}],
    },
}

SETTINGS = TenantSettings.model_validate(
    {
        "tenantId": "acme",
        "connectors": [{"name": "Webhook", "host": "https://erp.example.com/returns"}],
        "returnWorkflow": [
            {"stopOnError": True, "properties": [{"key": "ErrorStatus", "value": "Failed"}]},
            {"enabledForTags": ["vip"]},
        ],
    }
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def mutated_events(draw: st.DrawFn) -> bytes:
    """A valid event with fields removed, retyped or added, at the top and inside the order."""
    event = orjson.loads(orjson.dumps(VALID))
    for _ in range(draw(st.integers(0, 4))):
        target = (
            event
            if draw(st.booleans()) or not isinstance(event.get("order"), dict)
            else event["order"]
        )
        keys = sorted(target) or ["x"]
        key = draw(st.sampled_from([*keys, "Status", "TENANTID", "extra"]))
        action = draw(st.sampled_from(["drop", "retype", "add"]))
        if action == "drop":
            target.pop(key, None)
        else:
            target[key] = draw(json_values)
    return orjson.dumps(event)


@st.composite
def valid_variants(draw: st.DrawFn) -> bytes:
    """A valid event with another status and other tags: ignored, or in or out of step 1."""
    event = orjson.loads(orjson.dumps(VALID))
    event["status"] = draw(st.sampled_from(["Returned", "partiallyReturned", "Shipped", "New"]))
    event["order"]["tags"] = draw(st.sampled_from([["vip"], ["VIP", "x"], [], ["x"], None]))
    return orjson.dumps(event)


records = st.one_of(
    st.binary(max_size=300),
    mutated_events(),
    valid_variants(),
    json_values.map(orjson.dumps),
    st.text(max_size=200).map(str.encode),
)

response_bodies = st.one_of(
    st.binary(max_size=100),
    json_values.map(orjson.dumps),
    st.fixed_dictionaries(
        {},
        optional={
            "orderActionExecutionResults": json_values
            | st.lists(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "actionStatus": st.sampled_from(["Success", "warning", "ERROR", "x", None]),
                        "cancelWorkflow": st.booleans() | st.none(),
                        "errorReason": st.text(max_size=10) | st.none(),
                    },
                ),
                max_size=3,
            ),
            "orderPatch": json_values
            | st.dictionaries(
                st.sampled_from(["status", "tags", "Tags", "errors", "origin", "name", "foo"]),
                json_values,
                max_size=4,
            ),
        },
    ).map(orjson.dumps),
)


# What became of the records in one run; each must have happened, or a path went untested.
OUTCOME_KINDS = {
    "dead-lettered",
    "ignored",
    "step 0 stopped the workflow",
    "step 0 went on; the order is outside step 1",
    "step 0 went on; step 1 ran",
}


def _has_vip_tag(order: dict) -> bool:
    tags = [v for k, v in order.items() if k.lower() == "tags"]
    return any(isinstance(t, str) and t.lower() == "vip" for value in tags for t in value or [])


def test_any_record_is_processed_or_dead_lettered_with_its_bytes() -> None:
    reached: Counter[str] = Counter()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(
        value=records,
        answers=st.lists(
            st.tuples(st.sampled_from([200, 204, 400, 404, 500]), response_bodies),
            min_size=2,
            max_size=2,
        ),
    )
    def check(value: bytes, answers: list[tuple[int, bytes]]) -> None:
        kind = _process_or_dead_letter(value, answers)
        event(kind)
        reached[kind] += 1

    check()
    missing = OUTCOME_KINDS - set(reached)
    assert not missing, f"never reached: {sorted(missing)}; reached: {dict(reached)}"


def _process_or_dead_letter(value: bytes, answers: list[tuple[int, bytes]]) -> str:
    """Runs one record the way the worker does; returns what became of it."""
    decoded = decode(value, max_bytes=4096)
    if isinstance(decoded, Rejected):
        assert decoded.reason in REASONS and decoded.error
        letter = dead_letter_record(
            decoded, topic="in", partition=0, offset=7, key=b"\xff", value=value, headers=[]
        )
        assert base64.b64decode(letter.value) == value
        orjson.dumps(letter.model_dump(mode="json", by_alias=True))
        return "dead-lettered"
    if isinstance(decoded, Ignored):
        return "ignored"
    assert isinstance(decoded, Accepted)
    answers_left = list(answers)

    async def deliver(request: WebhookRequest) -> Delivery:
        status, body = answers_left.pop(0)
        parsed = parse_response(body) if status < 300 else f"HTTP {status}"
        ok = not isinstance(parsed, str)
        return Delivery(
            ok=ok,
            attempts=1,
            http_status=status,
            result=parsed if ok else None,
            reason=None if ok else parsed,
        )

    outputs = asyncio.run(
        run_workflow(
            decoded, SETTINGS, Source(topic="in", partition=0, offset=7), deliver, WorkflowOptions()
        )
    )
    for output in outputs:
        orjson.dumps(output.record.model_dump(mode="json", by_alias=True))
    events = [o.record for o in outputs if o.role == "events"]
    patches = [o.record for o in outputs if o.role == "patches"]
    # Step 0 has no scope: every accepted record is processed, with an order-event for it.
    assert events and events[0].step.index == 0, outputs
    first = events[0]
    if not first.continue_workflow:
        assert len(events) == 1 and first.skipped_steps == [1], events
        return "step 0 stopped the workflow"
    assert len(events) <= 2 and all(e.step.index == 1 for e in events[1:]), events
    # Step 1 is for "vip" orders: when step 0's patch left the tags alone, the input decides.
    step_0_patch = [p.patch for p in patches if p.step.index == 0]
    if not any(k.lower() == "tags" for patch in step_0_patch for k in patch):
        assert (len(events) == 2) == _has_vip_tag(decoded.event.order), (decoded.event, events)
    if len(events) == 2:
        return "step 0 went on; step 1 ran"
    return "step 0 went on; the order is outside step 1"
