"""``replay --failed``: which input events ended in Warning or Error. Pure.

Read from the order-events topic: per input event (tenant, ``sourceEventId``) and step, the
latest order-event wins (a replay that succeeded since replaces the failure). An input event
is failed when any of its steps' latest outcome is Warning or Error.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

FAILED_STATUSES = frozenset({"Warning", "Error"})


@dataclass
class FailedEvents:
    latest: dict[tuple[str, str, int], str] = field(default_factory=dict)
    """(tenant, sourceEventId, step index) → the latest actionStatus, in log order."""
    unreadable: int = 0

    def add(self, value: bytes | None) -> None:
        """One order-events record, in offset order of its partition (one order's events share
        a partition, so per input event this is the order they were written in)."""
        try:
            document = orjson.loads(value or b"")
            key = (document["tenantId"], document["sourceEventId"], document["step"]["index"])
            status = document["actionStatus"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            self.unreadable += 1
            return
        self.latest[key] = status

    def sources(self) -> frozenset[tuple[str, str]]:
        """(tenant, sourceEventId) of every input event with a step whose latest is a failure."""
        return frozenset(
            (tenant, source)
            for (tenant, source, _), status in self.latest.items()
            if status in FAILED_STATUSES
        )
