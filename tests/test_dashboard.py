"""The Grafana dashboard and its provisioning: valid, wired to compose's Prometheus.

That every metric its queries use exists in a real worker's /metrics is checked on the broker
(tests/integration/test_failures_on_broker.py, `dashboard_metric_names`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "returnhook.json"
_METRIC = re.compile(r"\b((?:returnhook|faust)_[a-z_]+)\b")


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def dashboard_exprs() -> list[str]:
    return [t["expr"] for panel in dashboard()["panels"] for t in panel["targets"]]


def dashboard_metric_names() -> set[str]:
    """Every metric name a panel or variable query uses, as it appears in /metrics."""
    names = {name for expr in dashboard_exprs() for name in _METRIC.findall(expr)}
    for variable in dashboard()["templating"]["list"]:
        names |= set(_METRIC.findall(variable["definition"]))
    return names


def test_the_dashboard_is_valid_grafana_json_on_the_provisioned_data_source() -> None:
    board = dashboard()
    assert board["uid"] == "returnhook" and board["schemaVersion"] >= 36
    sources = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    [source] = sources["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        assert panel["type"] == "timeseries" and panel["targets"], panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": source["uid"]}
        for target in panel["targets"]:
            assert target["expr"].count("(") == target["expr"].count(")"), target["expr"]


def test_the_dashboard_shows_what_the_issue_asks_for() -> None:
    exprs = " ".join(dashboard_exprs())
    for needed in (
        "returnhook_input_events_total",  # throughput
        "by (action_status) (rate(returnhook_outcomes_total",
        "by (status_class) (rate(returnhook_webhook_attempts_total",
        "histogram_quantile(0.5, sum by (le) (rate(returnhook_webhook_latency_seconds_bucket",
        "histogram_quantile(0.99, sum by (le) (rate(returnhook_webhook_latency_seconds_bucket",
        "by (host) (returnhook_calls_in_flight_by_host)",
        "returnhook_uncommitted_events)",
        "returnhook_oldest_unfinished_age_seconds",
        "faust_topic_partition_end_offset",
        "faust_topic_partition_offset_commited",
        "by (reason) (increase(returnhook_dead_letters_total",
        "returnhook_webhook_retries_total",
    ):
        assert needed in exprs, needed


def test_compose_provisions_grafana_from_these_files() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    grafana = services["grafana"]
    assert grafana["image"].startswith("grafana/grafana:")
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro" in grafana["volumes"]
    assert "./deploy/grafana/dashboards:/var/lib/grafana/dashboards:ro" in grafana["volumes"]
    providers = yaml.safe_load((GRAFANA / "provisioning/dashboards/returnhook.yml").read_text())
    assert providers["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    assert "prometheus" in grafana["depends_on"]
