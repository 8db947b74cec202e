"""The pure parts of `returnhook send` and `returnhook tail`."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import orjson

from streams.cli.send import event_from_flags, to_records
from streams.cli.tail import describe_record, matches, record_fields
from streams.core.decoder import Accepted, decode


def test_an_event_from_flags_is_one_a_worker_runs() -> None:
    event = event_from_flags(
        "acme", "o-1", market="NOR", now=datetime(2026, 3, 1, tzinfo=UTC), event_id="e-1"
    )
    decoded = decode(orjson.dumps(event))
    assert isinstance(decoded, Accepted)
    assert decoded.order_id == "o-1" and decoded.return_order_form_id == "o-1-r1"
    assert decoded.order_view.market_id == "NOR"
    assert event["timestamp"] == "2026-03-01T00:00:00Z"


def test_to_records_keys_by_order_and_names_what_a_worker_would_not_run() -> None:
    good = event_from_flags("acme", "o-1")
    ignored = event_from_flags("acme", "o-2", status="Completed")
    broken = {"tenantId": "acme", "status": "Returned"}
    records, problems = to_records([good, ignored, broken], allow_invalid=False)
    assert [key for key, _ in records] == [b"o-1"]
    assert problems[0] == "event 1 has status 'Completed': workers ignore it"
    assert problems[1].startswith("event 2 would be dead-lettered as invalid_event: ")
    records, _ = to_records([good, broken], allow_invalid=True)
    assert len(records) == 2


def test_record_fields_and_filters() -> None:
    event = {"tenantId": "acme", "orderId": "o-1", "actionStatus": "Success"}
    fields = record_fields("events", b"o-1", orjson.dumps(event))
    assert (fields["tenant"], fields["order"]) == ("acme", "o-1")
    assert matches(fields, ["acme"], []) and matches(fields, [], ["o-1"])
    assert not matches(fields, ["globex"], []) and not matches(fields, ["acme"], ["o-2"])
    original = orjson.dumps({"tenantid": "acme", "status": "Returned"})
    dead = {"reason": "unknown_tenant", "value": base64.b64encode(original).decode()}
    fields = record_fields("deadLetters", b"o-9", orjson.dumps(dead))
    assert (fields["tenant"], fields["order"]) == ("acme", "o-9")
    assert record_fields("events", b"k", b"not json") == {"tenant": None, "order": "k"}


def test_describe_record_lines() -> None:
    step = {"index": 0, "name": "WebhookReturnWorkflowStep"}
    event = {
        "tenant": "acme", "order": "o-1", "step": step, "actionStatus": "Warning",
        "attempts": 1, "httpStatus": 400, "durationMs": 3, "errorReason": "bad",
        "continueWorkflow": True,
    }  # fmt: skip
    assert describe_record("events", event) == (
        "event       acme o-1 step 0 WebhookReturnWorkflowStep: Warning  attempts=1  http=400"
        "  3 ms  reason: bad"
    )
    patch = {"tenant": "acme", "order": "o-1", "step": step, "patch": {"tags": ["x"]}}
    assert describe_record("patches", patch) == (
        'patch       acme o-1 step 0 WebhookReturnWorkflowStep: {"tags":["x"]}'
    )
    dead = {
        "tenant": None, "order": "o-9", "reason": "invalid_json", "topic": "in",
        "partition": 0, "offset": 4, "error": "not JSON",
    }  # fmt: skip
    assert describe_record("deadLetters", dead) == (
        "dead letter - o-9: invalid_json at in[0]@4: not JSON"
    )
