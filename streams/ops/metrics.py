"""Prometheus metrics of one worker, served at ``/metrics`` next to faust's own.

Labels stay bounded: tenants, status classes, reasons and webhook origins (scheme://host:port);
never order ids, paths or query strings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


def status_class(status: int | None, error: str | None) -> str:
    """``2xx``…``5xx``, or what went wrong when there was no answer."""
    if status is not None:
        return f"{status // 100}xx"
    if error and error.startswith("no answer within"):
        return "timeout"
    return "connection_error"


class Metrics:
    def __init__(
        self,
        registry: CollectorRegistry,
        stats: Callable[[], Mapping[str, Any]],
    ) -> None:
        self.registry = registry
        self.input_events = Counter(
            "returnhook_input_events",
            "Input records by what became of them",
            ["result"],
            registry=registry,
        )
        self.attempts = Counter(
            "returnhook_webhook_attempts",
            "Webhook attempts by tenant and status class",
            ["tenant", "status_class"],
            registry=registry,
        )
        self.retries = Counter(
            "returnhook_webhook_retries",
            "Webhook attempts after the first",
            ["tenant"],
            registry=registry,
        )
        self.latency = Histogram(
            "returnhook_webhook_latency_seconds",
            "Duration of one webhook attempt",
            ["tenant"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.outcomes = Counter(
            "returnhook_outcomes",
            "Step outcomes (order-events) by tenant and actionStatus",
            ["tenant", "action_status"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "returnhook_dead_letters",
            "Input records sent to the dead-letter topic, by reason",
            ["reason"],
            registry=registry,
        )
        self.future_timestamps = Counter(
            "returnhook_future_timestamps",
            "runAfterOrderIsSaved steps whose event time was after we received it (taken as now)",
            registry=registry,
        )
        self.oversized_outputs = Counter(
            "returnhook_oversized_outputs",
            "Output records that would not fit their topic, by role (written cut, or as Error)",
            ["role"],
            registry=registry,
        )
        registry.register(_ExecutorCollector(stats))
        self._children: dict[tuple[str, str], tuple[Any, Any]] = {}

    def on_attempt(
        self, tenant: str, attempt: int, status: int | None, error: str | None, seconds: float
    ) -> None:
        key = (tenant, status_class(status, error))
        children = self._children.get(key)
        if children is None:
            if len(self._children) > 10_000:
                self._children.clear()
            children = self._children[key] = (
                self.attempts.labels(*key),
                self.latency.labels(tenant),
            )
        children[0].inc()
        children[1].observe(seconds)
        if attempt > 1:
            self.retries.labels(tenant).inc()  # retries are rare: no cached child (no 0 series)


class _ExecutorCollector(Collector):
    """Gauges read from the executor when scraped, so the hot path never updates them."""

    def __init__(self, stats: Callable[[], Mapping[str, Any]]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        stats = self._stats()
        yield GaugeMetricFamily(
            "returnhook_calls_in_flight",
            "Webhook attempts running in this worker",
            value=stats.get("calls_running", 0),
        )
        by_host = GaugeMetricFamily(
            "returnhook_calls_in_flight_by_host",
            "Webhook attempts running, per webhook origin",
            labels=["host"],
        )
        for host, running in sorted(stats.get("calls_running_by_host", {}).items()):
            by_host.add_metric([host], running)
        yield by_host
        yield GaugeMetricFamily(
            "returnhook_orders_active",
            "Orders with an event being processed or queued",
            value=stats.get("orders_active", 0),
        )
        yield GaugeMetricFamily(
            "returnhook_uncommitted_events",
            "Accepted input events not yet acknowledged",
            value=stats.get("uncommitted_events", 0),
        )
        if stats.get("window"):
            yield GaugeMetricFamily(
                "returnhook_uncommitted_events_limit",
                "Uncommitted events at which intake pauses (max_uncommitted)",
                value=stats["window"],
            )
        yield GaugeMetricFamily(
            "returnhook_uncommitted_bytes",
            "Record bytes of the accepted input events not yet acknowledged",
            value=stats.get("uncommitted_bytes", 0),
        )
        if stats.get("max_uncommitted_bytes"):
            yield GaugeMetricFamily(
                "returnhook_uncommitted_bytes_limit",
                "Uncommitted record bytes at which intake pauses (max_uncommitted_bytes)",
                value=stats["max_uncommitted_bytes"],
            )
        yield CounterMetricFamily(
            "returnhook_intake_waits",
            "Times intake paused because the uncommitted window was full (events or bytes)",
            value=stats.get("intake_waits", 0),
        )
        yield GaugeMetricFamily(
            "returnhook_oldest_unfinished_age_seconds",
            "Age of the oldest accepted, unacknowledged input event",
            value=stats.get("oldest_unfinished_age_s", 0.0),
        )
        yield CounterMetricFamily(
            "returnhook_late_input_events",
            "Input events that arrived after later offsets of their partition (run out of order)",
            value=stats.get("late_events", 0),
        )
        yield CounterMetricFamily(
            "returnhook_input_events_skipped_finished",
            "Input events the partition's previous owner had finished (progress record): "
            "acknowledged, not run again",
            value=stats.get("skipped_finished", 0),
        )
        yield CounterMetricFamily(
            "returnhook_input_events_redone",
            "Input events the partition's previous owner had taken but not recorded finished: "
            "run again (some may have been done before)",
            value=stats.get("rerun", 0),
        )
        yield CounterMetricFamily(
            "returnhook_progress_records_written",
            "Progress records written to the progress topic",
            value=stats.get("progress_records_written", 0),
        )
