"""The demo receiver answers each route the way the demo and docker-compose rely on."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from streams.demo.receiver import build_app, serve

ORDER = {
    "id": "ORD-1",
    "status": "Returned",
    "marketId": "NOR",
    "tags": ["vip"],
    "properties": [{"key": "Channel", "value": "web", "keyGroup": None}],
    "customField": {"kept": True},
}
BODY = {
    "Value": ORDER,
    "WorkflowStep": {"name": "WebhookReturnWorkflowStep", "connector": "Webhook"},
    "ReturnOrderFormId": "R-42",
}
SECRET = "Bearer do-not-log-me"


@pytest.fixture
async def client() -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(build_app())) as test_client:
        yield test_client


def _headers(key: str = "evt-1:0", attempt: int = 1) -> dict[str, str]:
    return {
        "Authorization": SECRET,
        "Idempotency-Key": key,
        "X-Delivery-Count": str(attempt),
        "X-Max-Delivery-Count": "4",
    }


async def test_accept_is_empty_success(client: TestClient) -> None:
    response = await client.post("/returns/accept", json=BODY, headers=_headers())
    assert response.status == 200
    assert await response.read() == b""


async def test_enrich_appends_tag_and_erp_return_id(client: TestClient) -> None:
    response = await client.post("/returns/enrich", json=BODY, headers=_headers())
    assert response.status == 200
    result = await response.json()
    assert result["orderActionExecutionResults"] == [
        {"actionStatus": "Success", "cancelWorkflow": False, "errorReason": None}
    ]
    assert result["orderPatch"] == {
        "tags": ["vip", "erp-synced"],
        "properties": [
            {"key": "Channel", "value": "web", "keyGroup": None},
            {"key": "ErpReturnId", "value": "RMA-R-42"},
        ],
    }


async def test_enrich_is_idempotent_and_reads_lowercase_fields(client: TestClient) -> None:
    """Patched order sent again (a next step, a redelivery): no duplicate tag or property."""
    order = {
        "id": "ORD-1",
        "tags": ["erp-synced"],
        "properties": [{"key": "ErpReturnId", "value": "RMA-old"}],
    }
    body = {"value": order, "returnOrderFormId": "R-43"}
    response = await client.post("/returns/enrich", json=body, headers=_headers())
    assert response.status == 200
    patch = (await response.json())["orderPatch"]
    assert patch == {
        "tags": ["erp-synced"],
        "properties": [{"key": "ErpReturnId", "value": "RMA-R-43"}],
    }


async def test_enrich_rejects_a_body_without_order(client: TestClient) -> None:
    response = await client.post("/returns/enrich", data=b"not json", headers=_headers())
    assert response.status == 400
    response = await client.post("/returns/enrich", json={"Value": ORDER}, headers=_headers())
    assert response.status == 400


async def test_reject_cancels_the_workflow(client: TestClient) -> None:
    response = await client.post("/returns/reject", json=BODY, headers=_headers())
    assert response.status == 200
    result = await response.json()
    assert result["orderActionExecutionResults"] == [
        {"actionStatus": "Error", "cancelWorkflow": True, "errorReason": "Return window expired"}
    ]
    assert result["orderPatch"] is None


async def test_flaky_fails_first_delivery_of_each_key(client: TestClient) -> None:
    first = await client.post("/returns/flaky", json=BODY, headers=_headers("evt-1:0", 1))
    assert first.status == 503
    second = await client.post("/returns/flaky", json=BODY, headers=_headers("evt-1:0", 2))
    assert second.status == 200
    assert await second.json() == {}
    # A redelivery after a crash counts from 1 again; the key says it was already seen.
    redelivered = await client.post("/returns/flaky", json=BODY, headers=_headers("evt-1:0", 1))
    assert redelivered.status == 200
    other = await client.post("/returns/flaky", json=BODY, headers=_headers("evt-2:0", 1))
    assert other.status == 503


async def test_missing_is_404(client: TestClient) -> None:
    response = await client.post("/returns/missing", json=BODY, headers=_headers())
    assert response.status == 404


async def test_serve_answers_health_on_a_real_port_and_logs_no_headers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="streams.demo.receiver")
    runner = await serve("127.0.0.1", 0)
    try:
        host, port = runner.addresses[0][:2]
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://{host}:{port}/health") as response:
                assert response.status == 200
                assert await response.text() == "ok"
            async with session.post(
                f"http://{host}:{port}/returns/flaky", json=BODY, headers=_headers("k", 1)
            ) as response:
                assert response.status == 503
    finally:
        await runner.cleanup()

    lines = [r.getMessage() for r in caplog.records if r.name == "streams.demo.receiver"]
    assert lines == [
        "GET /health -> 200 (attempt ?)",
        "POST /returns/flaky -> 503 (attempt 1)",
    ]
    assert all("do-not-log-me" not in record.getMessage() for record in caplog.records)
