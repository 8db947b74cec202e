"""streams.ops.metrics: status classes, the attempt observer and the executor's gauges."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from streams.ops.metrics import LATENCY_BUCKETS, Metrics, status_class


@pytest.mark.parametrize(
    ("status", "error", "expected"),
    [
        (200, None, "2xx"),
        (204, None, "2xx"),
        (200, "the answer is larger than 10 bytes", "2xx"),  # an answer, however unusable
        (302, None, "3xx"),
        (400, None, "4xx"),
        (404, None, "4xx"),
        (429, None, "4xx"),
        (500, None, "5xx"),
        (503, None, "5xx"),
        (None, "no answer within 0.3 s", "timeout"),
        (None, "ClientConnectorError: Cannot connect to host 127.0.0.1:1", "connection_error"),
        (None, "ServerDisconnectedError", "connection_error"),
        (None, None, "connection_error"),
    ],
)
def test_status_class(status: int | None, error: str | None, expected: str) -> None:
    assert status_class(status, error) == expected


class FakeStats:
    """What the app's `stats()` returns; changed between scrapes by the tests."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.calls = 0

    def __call__(self) -> dict[str, Any]:
        self.calls += 1
        return self.values


@pytest.fixture
def stats() -> FakeStats:
    return FakeStats()


@pytest.fixture
def metrics(stats: FakeStats) -> Metrics:
    return Metrics(CollectorRegistry(), stats)


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_on_attempt_counts_attempts_latency_and_retries(metrics: Metrics) -> None:
    metrics.on_attempt("acme", 1, 503, None, 0.2)
    metrics.on_attempt("acme", 2, None, "no answer within 1 s", 1.0)
    metrics.on_attempt("acme", 3, 200, None, 0.03)
    metrics.on_attempt("globex", 1, 404, None, 0.01)

    attempts = "returnhook_webhook_attempts_total"
    assert value(metrics, attempts, tenant="acme", status_class="5xx") == 1
    assert value(metrics, attempts, tenant="acme", status_class="timeout") == 1
    assert value(metrics, attempts, tenant="acme", status_class="2xx") == 1
    assert value(metrics, attempts, tenant="globex", status_class="4xx") == 1
    assert value(metrics, attempts, tenant="globex", status_class="2xx") is None

    retries = "returnhook_webhook_retries_total"
    assert value(metrics, retries, tenant="acme") == 2  # attempts 2 and 3
    assert value(metrics, retries, tenant="globex") is None  # a first attempt is no retry

    latency = "returnhook_webhook_latency_seconds"
    assert value(metrics, f"{latency}_count", tenant="acme") == 3
    assert value(metrics, f"{latency}_sum", tenant="acme") == pytest.approx(1.23)
    assert value(metrics, f"{latency}_bucket", tenant="acme", le="0.05") == 1
    assert value(metrics, f"{latency}_bucket", tenant="acme", le="0.25") == 2
    assert value(metrics, f"{latency}_bucket", tenant="acme", le="+Inf") == 3
    assert value(metrics, f"{latency}_count", tenant="globex") == 1


def test_the_latency_buckets_cover_the_step_timeouts() -> None:
    assert list(LATENCY_BUCKETS) == sorted(LATENCY_BUCKETS)
    assert LATENCY_BUCKETS[0] <= 0.01 and LATENCY_BUCKETS[-1] >= 30  # the default timeout


# The counters by result, reason and outcome are incremented by the app (streams/app.py), not
# here; tests/integration/test_observability.py::test_metrics_match_the_outputs checks them
# against what a real worker produced and dead-lettered.


def test_executor_gauges_are_read_at_scrape_time(metrics: Metrics, stats: FakeStats) -> None:
    stats.values = {
        "calls_running": 5,
        "calls_running_by_host": {"https://b.example:443": 2, "http://a.example:8080": 3},
        "orders_active": 7,
        "uncommitted_events": 11,
        "oldest_unfinished_age_s": 2.5,
        "window": 2048,
        "paused": 0.0,  # other keys of the stats are not exported
    }
    assert value(metrics, "returnhook_calls_in_flight") == 5
    assert value(metrics, "returnhook_orders_active") == 7
    assert value(metrics, "returnhook_uncommitted_events") == 11
    assert value(metrics, "returnhook_oldest_unfinished_age_seconds") == 2.5
    assert value(metrics, "returnhook_uncommitted_events_limit") == 2048
    by_host = "returnhook_calls_in_flight_by_host"
    assert value(metrics, by_host, host="http://a.example:8080") == 3
    assert value(metrics, by_host, host="https://b.example:443") == 2

    stats.values = {"calls_running": 0, "calls_running_by_host": {}}
    assert value(metrics, "returnhook_calls_in_flight") == 0
    assert value(metrics, by_host, host="http://a.example:8080") is None  # gone, not stale


def test_executor_gauges_default_to_zero(metrics: Metrics) -> None:
    for name in (
        "returnhook_calls_in_flight",
        "returnhook_orders_active",
        "returnhook_uncommitted_events",
        "returnhook_oldest_unfinished_age_seconds",
    ):
        assert value(metrics, name) == 0, name
    # No limit known: no series, rather than a 0 that would divide uncommitted/limit by zero.
    assert value(metrics, "returnhook_uncommitted_events_limit") is None


def test_one_stats_call_per_scrape(metrics: Metrics, stats: FakeStats) -> None:
    before = stats.calls
    generate_latest(metrics.registry)
    assert stats.calls == before + 1


def test_exposition_parses_and_names_every_metric(metrics: Metrics, stats: FakeStats) -> None:
    stats.values = {"calls_running_by_host": {"http://erp:8080": 1}, "window": 10}
    metrics.on_attempt("acme", 1, 200, None, 0.1)
    metrics.input_events.labels("processed").inc()
    metrics.outcomes.labels("acme", "Success").inc()
    metrics.dead_letters.labels("unknown_tenant").inc()
    text = generate_latest(metrics.registry).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert {
        "returnhook_input_events": "counter",
        "returnhook_webhook_attempts": "counter",
        "returnhook_webhook_retries": "counter",
        "returnhook_webhook_latency_seconds": "histogram",
        "returnhook_outcomes": "counter",
        "returnhook_dead_letters": "counter",
        "returnhook_calls_in_flight": "gauge",
        "returnhook_calls_in_flight_by_host": "gauge",
        "returnhook_orders_active": "gauge",
        "returnhook_uncommitted_events": "gauge",
        "returnhook_uncommitted_events_limit": "gauge",
        "returnhook_oldest_unfinished_age_seconds": "gauge",
    }.items() <= {name: f.type for name, f in families.items()}.items()
    for family in families.values():
        assert family.documentation, family.name


def test_two_workers_in_one_process_keep_their_own_registries() -> None:
    """Tests and the demo run several apps side by side: no clash in a global registry."""
    first = Metrics(CollectorRegistry(), dict)
    second = Metrics(CollectorRegistry(), dict)
    first.input_events.labels("processed").inc()
    assert first.registry.get_sample_value("returnhook_input_events_total", {"result": "processed"})
    assert (
        second.registry.get_sample_value("returnhook_input_events_total", {"result": "processed"})
        is None
    )
