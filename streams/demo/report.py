"""What the demo read back (``Outcomes``, checked against each scenario's expectation) and the
tables it prints: printing only, no Kafka and no processes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from streams.demo import data as demo_data
from streams.demo.data import EXPECTED, IGNORED_ORDER_ID, STEP_LABELS, Expected

console = Console(highlight=False)
if not console.is_terminal:
    # Piped or captured: no terminal to measure, so do not squeeze the tables into 80 columns.
    console.width = max(int(os.environ.get("COLUMNS", "0") or 0), 150)


@dataclass
class Outcomes:
    """What the demo read back from the output topics, by order id."""

    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    patches: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)

    def add(self, role: str, value: dict[str, Any]) -> None:
        if role == "deadLetters":
            self.dead_letters.append(value)
            return
        target = self.events if role == "events" else self.patches
        target.setdefault(str(value.get("orderId")), []).append(value)

    def event_for(self, expected: Expected) -> dict[str, Any] | None:
        for event in self.events.get(expected.order_id, []):
            if event.get("step", {}).get("index") == expected.step:
                return event
        return None

    def patch_for(self, expected: Expected) -> dict[str, Any] | None:
        for patch in self.patches.get(expected.order_id, []):
            if patch.get("step", {}).get("index") == expected.step:
                return patch
        return None

    def produced_for(self, order_id: str) -> bool:
        return order_id in self.events or order_id in self.patches or self.dead_lettered(order_id)

    def dead_lettered(self, order_id: str) -> bool:
        return any(d.get("key") == order_id for d in self.dead_letters)

    def arrived(self, expected: Expected) -> bool:
        if self.dead_lettered(expected.order_id):
            return True  # it will not produce anything else: no reason to wait for it
        if self.event_for(expected) is None:
            return False
        return not expected.patch_fields or self.patch_for(expected) is not None

    def problems(self, expected: Expected) -> list[str]:
        """Differences from what the scenario should produce; empty when it went as planned."""
        if self.dead_lettered(expected.order_id):
            return ["dead-lettered"]
        event = self.event_for(expected)
        if event is None:
            return ["no order-event"]
        wanted = {
            "actionStatus": expected.action_status,
            "attempts": expected.attempts,
            "httpStatus": expected.http_status,
            "continueWorkflow": expected.continue_workflow,
        }
        found = [
            f"{key}={event.get(key)!r}, expected {value!r}"
            for key, value in wanted.items()
            if event.get(key) != value
        ]
        patch = self.patch_for(expected)
        if expected.patch_fields:
            if patch is None:
                found.append("no order-patch")
            else:
                missing = expected.patch_fields - set(patch.get("patch", {}))
                found.extend(f"patch lacks {name}" for name in sorted(missing))
        return found


def _orders() -> dict[str, dict[str, Any]]:
    return {value["order"]["id"]: value["order"] for value in demo_data.events()}


def print_events(outcomes: Outcomes) -> None:
    scenarios = {e.order_id: e for e in EXPECTED}
    table = Table(title="order-events", title_justify="left")
    table.add_column("order", no_wrap=True)
    table.add_column("scenario", overflow="fold")
    table.add_column("step", overflow="fold")
    table.add_column("actionStatus", no_wrap=True)
    table.add_column("attempts", no_wrap=True, justify="right")
    table.add_column("HTTP", no_wrap=True)
    table.add_column("continue?", no_wrap=True)
    table.add_column("reason", overflow="fold")
    for order_id, events in sorted(outcomes.events.items()):
        expected = scenarios.get(order_id)
        for event in events:
            status = str(event.get("actionStatus"))
            colour = {"Success": "green", "Warning": "yellow", "Error": "red"}.get(status, "")
            scenario = escape(expected.scenario) if expected else "?"
            if expected is None or outcomes.problems(expected):
                scenario += " [red](not as planned)[/]"
            reason = _shorten(event.get("errorReason") or "", 70)
            if event.get("skippedSteps"):
                skipped = ", ".join(map(str, event["skippedSteps"]))
                reason = f"{reason}; steps {skipped} skipped" if reason else f"{skipped} skipped"
            table.add_row(
                order_id,
                scenario,
                escape(_step_label(event.get("step", {}))),
                f"[{colour}]{status}[/]" if colour else escape(status),
                str(event.get("attempts")),
                str(event.get("httpStatus") or "–"),
                "yes" if event.get("continueWorkflow") else "[bold]no[/]",
                escape(reason),
            )
    console.print(table)


def print_patches(outcomes: Outcomes) -> None:
    orders = _orders()
    table = Table(title="order-patches", title_justify="left")
    table.add_column("order", no_wrap=True)
    table.add_column("step")
    table.add_column("what changes on the order", overflow="fold", min_width=30)
    for order_id, patches in sorted(outcomes.patches.items()):
        for patch in patches:
            summary = summarise_patch(orders.get(order_id, {}), patch.get("patch", {}))
            if patch.get("ignoredFields"):
                summary.append(f"ignored: {', '.join(patch['ignoredFields'])}")
            step = escape(_step_label(patch.get("step", {})))
            table.add_row(order_id, step, escape("; ".join(summary)))
    console.print(table)


def print_dead_letters(outcomes: Outcomes) -> None:
    table = Table(title="returnhook-dead-letters", title_justify="left")
    for name in ("key", "reason", "error"):
        table.add_column(name, overflow="fold")
    for letter in outcomes.dead_letters:
        table.add_row(*(escape(str(letter.get(k))) for k in ("key", "reason", "error")))
    console.print(table)


def _step_label(step: dict[str, Any]) -> str:
    index = step.get("index")
    label = STEP_LABELS.get(index, step.get("name", "?")) if isinstance(index, int) else "?"
    connector = f" ({step['connectorId']})" if step.get("connectorId") else ""
    return f"{index} {label}{connector}"


def summarise_patch(order: dict[str, Any], patch: dict[str, Any]) -> list[str]:
    """One short phrase per patched field, relative to the order the demo produced."""
    parts: list[str] = []
    for name, value in patch.items():
        before = order.get(name)
        if name == "tags" and isinstance(value, list):
            old = set(before or [])
            added = [t for t in value if t not in old]
            removed = [t for t in old if t not in set(value)]
            change = [f"+{t}" for t in added] + [f"-{t}" for t in removed]
            parts.append(f"tags {' '.join(change) or 'unchanged'}")
        elif name == "properties" and isinstance(value, list):
            old_props = {p.get("key"): p.get("value") for p in before or [] if isinstance(p, dict)}
            changed = [
                f"{p.get('key')}={p.get('value')}"
                for p in value
                if isinstance(p, dict) and old_props.get(p.get("key")) != p.get("value")
            ]
            parts.append(f"properties {', '.join(changed) or 'unchanged'}")
        elif name == "errors" and isinstance(value, list):
            parts.append(_errors_change(before or [], value))
        else:
            parts.append(f"{name} {before!r} → {value!r}" if before else f"{name} → {value!r}")
    return parts


def _errors_change(before: list[Any], after: list[Any]) -> str:
    old_refs = {_error_ref(e) for e in before}
    new_refs = {_error_ref(e) for e in after}
    added = [e for e in after if _error_ref(e) not in old_refs]
    removed = [e for e in before if _error_ref(e) not in new_refs]
    phrases = [
        f"+{e.get('severity', '?')} entry “{_shorten(str(e.get('message')), 60)}”"
        for e in added
        if isinstance(e, dict)
    ]
    if removed:
        plural = "entry" if len(removed) == 1 else "entries"
        phrases.append(f"cleared {len(removed)} earlier {demo_data.STEP_ERROR_KEY} {plural}")
    return "errors " + ("; ".join(phrases) or "unchanged")


def _error_ref(entry: Any) -> Any:
    if isinstance(entry, dict):
        return (entry.get("key"), entry.get("referenceId"), entry.get("message"))
    return repr(entry)


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def summary(outcomes: Outcomes, problems: dict[str, list[str]], elapsed: float) -> str:
    statuses: dict[str, int] = {}
    for events in outcomes.events.values():
        for event in events:
            status = str(event.get("actionStatus"))
            statuses[status] = statuses.get(status, 0) + 1
    rank = {"Success": 0, "Warning": 1, "Error": 2}
    counted = ", ".join(
        f"{n} {s}" for s, n in sorted(statuses.items(), key=lambda item: rank.get(item[0], 3))
    )
    counted = f" ({counted})" if counted else ""
    events = sum(statuses.values())
    patches = sum(len(p) for p in outcomes.patches.values())
    ignored = (
        f"nothing for {IGNORED_ORDER_ID} (Shipped, not a return)"
        if not outcomes.produced_for(IGNORED_ORDER_ID)
        else f"[red]{IGNORED_ORDER_ID} (not a return) produced output[/]"
    )
    verdict = (
        "[bold green]demo ok[/]"
        if not problems
        else f"[bold red]demo failed[/] ({len(problems)} scenario(s) not as expected)"
    )
    return (
        f"{verdict}: {len(EXPECTED)} return events → {events} order-events{counted}, "
        f"{patches} order-patches, {len(outcomes.dead_letters)} dead letters; {ignored}; "
        f"{elapsed:.1f} s"
    )
