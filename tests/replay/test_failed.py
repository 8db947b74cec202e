"""``replay --failed`` picks input events by their latest outcome per step."""

from __future__ import annotations

import orjson

from streams.replay.failed import FailedEvents


def _event(source: str, status: str, step: int = 0, tenant: str = "acme") -> bytes:
    return orjson.dumps(
        {
            "tenantId": tenant,
            "sourceEventId": source,
            "step": {"index": step, "name": "S"},
            "actionStatus": status,
        }
    )


def test_latest_outcome_per_step_decides() -> None:
    failed = FailedEvents()
    for value in (
        _event("e1", "Error"),
        _event("e2", "Warning"),
        _event("e3", "Success"),
        _event("e4", "Error"),
        _event("e4", "Success"),  # a replay that succeeded since
        _event("e5", "Warning", step=0),
        _event("e5", "Success", step=1),  # a later step's success does not hide step 0
        _event("e1", "Error", tenant="other"),
        b"not json",
        b'{"tenantId": "acme"}',
    ):
        failed.add(value)
    assert failed.sources() == {("acme", "e1"), ("acme", "e2"), ("acme", "e5"), ("other", "e1")}
    assert failed.unreadable == 2
