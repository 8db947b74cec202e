"""Issue 6 on the real broker: /metrics against the outputs, /ready and /health, no secret leaks.

Two module-scoped runs and one test of its own:

- `metrics_run`: one worker with its web server on a free port. /ready is polled from the moment
  the process starts (the web server is up about half a second in, the group assigns partitions
  seconds later, so "not ready" is observed, not assumed); then a mixed batch (success, a
  cancel that becomes a Warning, a 500 that spends every retry, a 404, an ignored status, bad
  JSON, an unknown tenant) and one scrape of /metrics, compared with what the topics and the
  receiver saw.
- a rebalance: a second worker joins a group with a one-partition input; the first turns
  not-ready and ready again, the idle second one becomes ready too.
- `secrets_run`: two workers (own consumer groups, same topics) at `--log-level debug`, one
  `--log-format json`, one text, with planted secrets in the settings; then the logs, /metrics,
  /returnhook/stats/, `config show`, `settings show` and `settings list` are searched for them.
  /metrics and the stats are scraped twice: idle, and while the receiver holds the answers to
  calls whose hosts carry credentials (user:password in the URL, a bearer token, a secret
  header), so the per-host series of calls in flight exist when they are searched.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
import pytest
import pytest_asyncio
import yaml
from prometheus_client.parser import text_string_to_metric_families

from models.settings import TenantSettings
from streams.kafka.settings_file import publish_settings
from streams.processes.ports import free_port
from tests.conftest import TestTopics
from tests.integration.conftest import ModuleTopics, StartWorker
from tests.integration.traffic import assigned_partitions
from tests.integration.worker_process import RETURNHOOK, WorkerProcess
from tests.kafka_helpers import produce, read_topic
from tests.receiver import RecordedRequest, RecordingReceiver, Reply

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

STEP = "WebhookReturnWorkflowStep"
TIMESTAMP = "2026-03-01T10:00:00Z"
SUFFIX = uuid.uuid4().hex[:6]

# Planted secrets: distinctive, so any hit can only be a leak.
BEARER_TOKEN = f"tok-{uuid.uuid4().hex}-Bq"
BASIC_USER = "erp-user"
BASIC_PASSWORD = f"pw-{uuid.uuid4().hex}-Xk"
BASIC_PAIR = base64.b64encode(f"{BASIC_USER}:{BASIC_PASSWORD}".encode()).decode()
API_KEY = f"key-{uuid.uuid4().hex}-Ak"
PARTNER_REF = f"ref-{uuid.uuid4().hex}-Rf"  # a header name no heuristic knows: only `sensitive`
BROKER_PASSWORD = f"kpw-{uuid.uuid4().hex}-Kp"
URL_USER = "held-user"
URL_PASSWORD = f"upw-{uuid.uuid4().hex}-Up"  # in the webhook URL itself: user:password@host
URL_PAIR = base64.b64encode(f"{URL_USER}:{URL_PASSWORD}".encode()).decode()
SECRETS = {
    "bearer token": BEARER_TOKEN,
    "basic password": BASIC_PASSWORD,
    "basic user:password (base64)": BASIC_PAIR,
    "X-Api-Key": API_KEY,
    "sensitive step header": PARTNER_REF,
    "password in the URL": URL_PASSWORD,
    "URL user:password (base64)": URL_PAIR,
}
# Tenants whose calls the receiver holds while /metrics and the stats are scraped.
HELD = ("s-held-url", "s-held-bearer")


def tenant(name: str) -> str:
    return f"{name}-{SUFFIX}"


def order_id(name: str, n: int = 1) -> str:
    return f"o-{name}-{n}-{SUFFIX}"


def event(tenant_id: str, oid: str, status: str = "Returned") -> bytes:
    return orjson.dumps(
        {
            "eventId": f"ev-{oid}-{status}",
            "tenantId": tenant_id,
            "orderId": oid,
            "status": status,
            "previousStatus": "Completed",
            "timestamp": TIMESTAMP,
            "order": {"id": oid, "status": status, "marketId": "NOR", "lines": []},
        }
    )


def step(host: str | None = None, *, stop_on_error: bool = False, **extra: Any) -> dict:
    properties: list[dict] = [{"key": "Host", "value": host}] if host else []
    properties += extra.pop("headers", [])
    return {
        "name": STEP,
        "active": True,
        "connector": "Webhook",
        "stopOnError": stop_on_error,
        "properties": properties,
        **extra,
    }


async def publish(topics: TestTopics, documents: list[dict]) -> None:
    tenants = [TenantSettings.model_validate(d) for d in documents]
    await publish_settings(topics.bootstrap, topics.catalog.settings.name, tenants)


async def read_json(topics: TestTopics, topic: str, min_count: int) -> list[dict]:
    records = await read_topic(topics.bootstrap, topic, min_count=min_count, timeout=45, idle=1.0)
    return [orjson.loads(r.value) for r in records]


def web_args(port: int) -> list[str]:
    """WorkerProcess adds `--web`; the port comes as an extra flag."""
    return ["--web-port", str(port)]


async def get(port: int, path: str) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
        session.get(f"http://127.0.0.1:{port}{path}") as response,
    ):
        return response.status, await response.text()


# --- reading /metrics --------------------------------------------------------------------------

Labels = tuple[tuple[str, str], ...]


def samples(text: str) -> dict[str, dict[Labels, float]]:
    """sample name -> {sorted label pairs: value}, parsed with prometheus_client's own parser."""
    found: dict[str, dict[Labels, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = tuple(sorted(sample.labels.items()))
            found.setdefault(sample.name, {})[labels] = sample.value
    return found


def by_label(scraped: dict[str, dict[Labels, float]], name: str, *keys: str) -> dict[Any, float]:
    """One sample's values keyed by the given labels (a 1-tuple is unpacked), zeros dropped."""
    result: dict[Any, float] = {}
    for labels, value in scraped.get(name, {}).items():
        as_dict = dict(labels)
        key = tuple(as_dict[k] for k in keys)
        if value:
            result[key[0] if len(key) == 1 else key] = value
    return result


def label_values(scraped: dict[str, dict[Labels, float]]) -> set[str]:
    return {value for series in scraped.values() for labels in series for _, value in labels}


# --- the metrics run ---------------------------------------------------------------------------

ROUTES = {  # path -> tenant name
    "/ok": "m-ok",
    "/warn": "m-warn",
    "/fail": "m-fail",
    "/missing": "m-missing",
}


@dataclass
class MetricsRun:
    topics: TestTopics
    worker: WorkerProcess
    receiver: RecordingReceiver
    port: int
    ready_answers: list[tuple[float, int, dict]] = field(default_factory=list)
    assigned_logged_before_ready: bool = False
    events: list[dict] = field(default_factory=list)
    dead_letters: list[dict] = field(default_factory=list)
    patches: list[dict] = field(default_factory=list)
    inputs: dict[str, int] = field(default_factory=dict)
    order_ids: set[str] = field(default_factory=set)
    metrics_text: str = ""
    health: tuple[int, str] = (0, "")


def metrics_settings(receiver: RecordingReceiver) -> list[dict]:
    url = receiver.url
    return [
        {"tenantId": tenant("m-ok"), "returnWorkflow": [step(url("/ok"))]},
        # cancelWorkflow without stopOnError: a Warning, and the workflow goes on.
        {"tenantId": tenant("m-warn"), "returnWorkflow": [step(url("/warn"))]},
        # 500 on every attempt, stopOnError: an Error after 1 + 3 attempts.
        {"tenantId": tenant("m-fail"), "returnWorkflow": [step(url("/fail"), stop_on_error=True)]},
        # 404 is final: one attempt, a Warning without stopOnError.
        {"tenantId": tenant("m-missing"), "returnWorkflow": [step(url("/missing"))]},
    ]


def metrics_inputs() -> list[tuple[str, bytes | None, bytes]]:
    """(label, key, value): what becomes of each is in EXPECTED_INPUTS."""
    unknown = order_id("m-unknown")

    def returned(name: str, n: int = 1) -> tuple[str, bytes, bytes]:
        oid = order_id(name, n)
        return f"{name}-{n}", oid.encode(), event(tenant(name), oid)

    shipped = order_id("m-ok", 3)
    return [
        returned("m-ok", 1),
        returned("m-ok", 2),
        returned("m-warn"),
        returned("m-fail"),
        returned("m-missing"),
        ("ignored", shipped.encode(), event(tenant("m-ok"), shipped, status="Shipped")),
        ("bad-json", b"o-m-bad", b'{"tenantId": "x", "status": "Returned", "order": {'),
        ("unknown-tenant", unknown.encode(), event(f"nobody-{SUFFIX}", unknown)),
    ]


EXPECTED_INPUTS = {"processed": 5, "ignored": 1, "dead_lettered": 2}


def script_metrics_routes(receiver: RecordingReceiver) -> None:
    receiver.route(
        "/ok",
        Reply(
            body={
                "orderActionExecutionResults": [{"actionStatus": "Success"}],
                "orderPatch": {"tags": ["erp-ok"]},
            }
        ),
    )
    receiver.route(
        "/warn",
        Reply(
            body={
                "orderActionExecutionResults": [
                    {"cancelWorkflow": True, "errorReason": "manual review"}
                ]
            }
        ),
    )
    receiver.route("/fail", Reply(status=500, body=b"boom"))
    receiver.route("/missing", Reply(status=404))


async def poll_ready(run: MetricsRun, deadline: float) -> None:
    """Every answer of /ready from the moment the process starts until the first 200."""
    while time.monotonic() < deadline:
        try:
            status, text = await get(run.port, "/ready")
        except (aiohttp.ClientError, TimeoutError):
            await asyncio.sleep(0.05)  # the web server is not up yet
            continue
        run.ready_answers.append((time.monotonic(), status, orjson.loads(text)))
        if status == 200:
            run.assigned_logged_before_ready = (
                "Setting newly assigned partitions" in run.worker.log_text()
            )
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"/ready never answered 200; answers: {run.ready_answers[-3:]}")


async def scrape_when_settled(run: MetricsRun, timeout: float = 15.0) -> str:
    """/metrics once every input is counted and nothing is in flight or unacknowledged.

    The topics can be read a moment before the worker counts what it produced (it counts after
    the broker's acknowledgement), so the scrape waits for the counters to settle.
    """
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        status, text = await get(run.port, "/metrics")
        assert status == 200
        scraped = samples(text)
        settled = (
            by_label(scraped, "returnhook_input_events_total", "result") == EXPECTED_INPUTS
            and scraped["returnhook_uncommitted_events"][()] == 0
            and scraped["returnhook_calls_in_flight"][()] == 0
        )
        if settled:
            return text
        await asyncio.sleep(0.2)
    return text  # the assertions show what differs


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def metrics_receiver() -> AsyncIterator[RecordingReceiver]:
    async with RecordingReceiver() as started:
        yield started


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def metrics_run(
    module_topics: ModuleTopics,
    start_module_worker: StartWorker,
    metrics_receiver: RecordingReceiver,
) -> MetricsRun:
    topics = module_topics(partitions=2)
    receiver = metrics_receiver
    script_metrics_routes(receiver)
    await publish(topics, metrics_settings(receiver))
    port = free_port()
    started = time.monotonic()
    worker = await asyncio.to_thread(
        start_module_worker, topics, wait=False, web=True, extra_args=web_args(port)
    )
    run = MetricsRun(topics=topics, worker=worker, receiver=receiver, port=port)
    await poll_ready(run, deadline=started + 40)
    await asyncio.to_thread(worker.wait_ready, 10)
    run.health = await get(port, "/health")

    inputs = metrics_inputs()
    run.order_ids = {key.decode() for _, key, _ in inputs if key} | {"o-m-bad"}
    await produce(topics.bootstrap, topics.catalog.input.name, [(k, v) for _, k, v in inputs])
    catalog = topics.catalog
    # Success ×2 and Warning ×2 (cancel, 404) and Error ×1; two dead letters.
    run.events, run.dead_letters = await asyncio.gather(
        read_json(topics, catalog.events.name, 5),
        read_json(topics, catalog.dead_letters.name, 2),
    )
    run.metrics_text = await scrape_when_settled(run)
    return run


async def test_ready_is_false_before_assignment_and_true_after(metrics_run: MetricsRun) -> None:
    answers = metrics_run.ready_answers
    assert answers, "no answer from /ready"
    _, first_status, first = answers[0]
    # The web server comes up well before the group assigns partitions: the first answers
    # are "not ready", because nothing is assigned (and so nothing recovered) yet.
    assert first_status == 503, answers[:3]
    assert first["ready"] is False and first["partitionsAssigned"] is False, first
    assert all(status == 503 for _, status, _ in answers[:-1])
    assert all(body["ready"] is False for _, _, body in answers[:-1])
    _, last_status, last = answers[-1]
    assert last_status == 200
    assert last == {
        "ready": True,
        "partitionsAssigned": True,
        "settingsRecovered": True,
        "running": True,
    }
    # Ready only once the worker had logged its assignment.
    assert metrics_run.assigned_logged_before_ready
    # …and it stays ready while it runs.
    status, text = await get(metrics_run.port, "/ready")
    assert (status, orjson.loads(text)["ready"]) == (200, True)


async def test_health_is_live(metrics_run: MetricsRun) -> None:
    status, text = metrics_run.health
    assert status == 200 and orjson.loads(text) == {"status": "ok"}


async def test_metrics_match_the_outputs(metrics_run: MetricsRun) -> None:
    run = metrics_run
    scraped = samples(run.metrics_text)
    events = run.events
    assert len(events) == 5, events
    assert len(run.dead_letters) == 2, run.dead_letters

    # Outcomes: one per order-event, by tenant and actionStatus.
    outcomes = Counter((e["tenantId"], e["actionStatus"]) for e in events)
    assert outcomes == {
        (tenant("m-ok"), "Success"): 2,
        (tenant("m-warn"), "Warning"): 1,
        (tenant("m-fail"), "Error"): 1,
        (tenant("m-missing"), "Warning"): 1,
    }
    assert by_label(scraped, "returnhook_outcomes_total", "tenant", "action_status") == outcomes

    # Input events by what became of them.
    assert by_label(scraped, "returnhook_input_events_total", "result") == EXPECTED_INPUTS
    assert EXPECTED_INPUTS["dead_lettered"] == len(run.dead_letters)

    # Dead letters by reason, as written to the dead-letter topic.
    reasons = Counter(d["reason"] for d in run.dead_letters)
    assert reasons == {"invalid_json": 1, "unknown_tenant": 1}
    assert by_label(scraped, "returnhook_dead_letters_total", "reason") == reasons

    # Attempts by tenant and status class: exactly what the receiver answered.
    requests = run.receiver.requests
    assert all(r.status is not None for r in requests)

    def tenant_of(request: RecordedRequest) -> str:
        return tenant(ROUTES[request.path])

    attempts = Counter((tenant_of(r), f"{r.status // 100}xx") for r in requests)
    assert attempts == {
        (tenant("m-ok"), "2xx"): 2,
        (tenant("m-warn"), "2xx"): 1,
        (tenant("m-fail"), "5xx"): 4,
        (tenant("m-missing"), "4xx"): 1,
    }
    assert (
        by_label(scraped, "returnhook_webhook_attempts_total", "tenant", "status_class") == attempts
    )

    # Retries: attempts after the first (the 500 spent all three).
    retries = Counter(tenant_of(r) for r in requests if (r.attempt or 1) > 1)
    assert retries == {tenant("m-fail"): 3}
    assert by_label(scraped, "returnhook_webhook_retries_total", "tenant") == retries

    # The latency histogram saw every attempt once, per tenant.
    per_tenant = Counter(tenant_of(r) for r in requests)
    counts = by_label(scraped, "returnhook_webhook_latency_seconds_count", "tenant")
    assert counts == per_tenant
    sums = by_label(scraped, "returnhook_webhook_latency_seconds_sum", "tenant")
    assert set(sums) == set(per_tenant) and all(s > 0 for s in sums.values())
    infinite = {
        dict(labels)["tenant"]: value
        for labels, value in scraped["returnhook_webhook_latency_seconds_bucket"].items()
        if dict(labels)["le"] == "+Inf"
    }
    assert infinite == per_tenant

    # Nothing left running or unacknowledged; the per-host gauge has no series then.
    assert scraped["returnhook_calls_in_flight"][()] == 0
    assert scraped["returnhook_uncommitted_events"][()] == 0
    assert scraped["returnhook_oldest_unfinished_age_seconds"][()] == 0
    assert scraped["returnhook_orders_active"][()] == 0
    assert scraped["returnhook_uncommitted_events_limit"][()] == 20_000  # max_uncommitted
    assert "returnhook_calls_in_flight_by_host" not in scraped  # no samples, so no series

    # faust's own sensors are on the same page (name prefix "faust").
    assert any(name.startswith("faust_") for name in scraped), sorted(scraped)[:20]


async def test_metric_labels_hold_no_order_ids_or_paths(metrics_run: MetricsRun) -> None:
    values = label_values(samples(metrics_run.metrics_text))
    assert values, "no labelled series at all"
    paths = set(ROUTES)
    for value in values:
        assert not any(oid in value for oid in metrics_run.order_ids), value
        assert not any(path in value for path in paths), value
        assert not re.search(r"://[^/\s]+/", value), f"a URL with a path in a label: {value}"
        assert "?" not in value, value


async def test_ready_follows_a_rebalance_and_an_idle_worker_is_ready(
    module_topics: ModuleTopics, start_worker: StartWorker
) -> None:
    """A second worker joins a group whose one input partition the first one holds.

    The first goes "not ready" while the group rebalances and ready again once it has its
    partitions back; the second gets no input partition but, like every worker, the settings
    partition, so it becomes ready too: an idle standby is healthy, not stuck.
    """
    topics = module_topics(partitions=1)
    group = f"rh-test-ready-{uuid.uuid4().hex[:8]}"
    first_port, second_port = free_port(), free_port()
    first = await asyncio.to_thread(
        start_worker, topics, app_id=group, web=True, extra_args=web_args(first_port)
    )
    assert (await get(first_port, "/ready"))[0] == 200
    second = await asyncio.to_thread(
        start_worker, topics, app_id=group, web=True, wait=False, extra_args=web_args(second_port)
    )
    seen: dict[int, list[tuple[int, bool]]] = {first_port: [], second_port: []}
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        for port, answers in seen.items():
            try:
                status, text = await get(port, "/ready")
            except (aiohttp.ClientError, TimeoutError):
                continue
            answer = (status, orjson.loads(text)["partitionsAssigned"])
            if not answers or answers[-1] != answer:
                answers.append(answer)
        if all(answers and answers[-1][0] == 200 for answers in seen.values()) and any(
            status == 503 for status, _ in seen[first_port]
        ):
            break
        await asyncio.sleep(0.05)
    # The first worker: ready, not ready during the rebalance, ready again.
    assert seen[first_port][0][0] == 200 and (503, False) in seen[first_port], seen
    assert seen[first_port][-1] == (200, True), seen
    # The second: not ready until its (empty) input assignment and the settings are in.
    assert seen[second_port][0] == (503, False) and seen[second_port][-1] == (200, True), seen
    await asyncio.to_thread(second.wait_ready, 10)
    input_topic = topics.catalog.input.name
    assert assigned_partitions(first, input_topic) == {0}
    assert assigned_partitions(second, input_topic) == set()
    assert assigned_partitions(second, topics.catalog.settings.name) == {0}


# --- the secrets run ---------------------------------------------------------------------------


@dataclass
class SecretsRun:
    topics: TestTopics
    receiver: RecordingReceiver
    json_worker: WorkerProcess
    text_worker: WorkerProcess
    ports: dict[str, int]
    env: dict[str, str]
    events: list[dict] = field(default_factory=list)
    pages: dict[str, str] = field(default_factory=dict)  # "json /metrics" -> body
    held_pages: dict[str, str] = field(default_factory=dict)  # the same, with calls in flight
    held_events: list[dict] = field(default_factory=list)
    cli: dict[str, tuple[int, str]] = field(default_factory=dict)  # command -> (rc, output)


def secrets_settings(receiver: RecordingReceiver) -> list[dict]:
    url = receiver.url
    return [
        {
            "tenantId": tenant("s-bearer"),
            "connectors": [
                {
                    "name": "Webhook",
                    "host": url("/bearer"),
                    "bearerToken": "${shared:PLANTED_ERP_TOKEN}",
                    "customHeaders": [{"key": "X-Api-Key", "value": API_KEY}],
                }
            ],
            "returnWorkflow": [step()],
        },
        {
            "tenantId": tenant("s-basic"),
            "connectors": [
                {
                    "name": "Webhook",
                    "host": url("/basic"),
                    "username": BASIC_USER,
                    "password": BASIC_PASSWORD,
                }
            ],
            "returnWorkflow": [
                step(
                    headers=[
                        {
                            "key": "X-Partner-Ref",
                            "value": PARTNER_REF,
                            "keyGroup": "RequestHeaders",
                            "sensitive": True,
                        }
                    ]
                )
            ],
        },
        {
            # Credentials in the URL (aiohttp sends them as Basic auth) and a secret header.
            "tenantId": tenant("s-held-url"),
            "returnWorkflow": [
                step(
                    url("/held").replace("://", f"://{URL_USER}:{URL_PASSWORD}@"),
                    headers=[
                        {
                            "key": "X-Partner-Ref",
                            "value": PARTNER_REF,
                            "keyGroup": "RequestHeaders",
                            "sensitive": True,
                        }
                    ],
                )
            ],
        },
        {
            # A bearer token from the environment and an API key header.
            "tenantId": tenant("s-held-bearer"),
            "connectors": [
                {
                    "name": "Webhook",
                    "host": url("/held"),
                    "bearerToken": "${shared:PLANTED_ERP_TOKEN}",
                    "customHeaders": [{"key": "X-Api-Key", "value": API_KEY}],
                }
            ],
            "returnWorkflow": [step()],
        },
    ]


def echo_secrets(request: RecordedRequest) -> Reply:
    """The first attempt fails; later ones answer 200 with the secrets echoed in errorReason.

    A webhook quoting what it was sent ("key … is not allowed") is how secrets reach outcome
    texts and from there the outcome log line.
    """
    if request.attempt == 1:
        return Reply(status=500, body=b"try again")
    echoed = f"key {request.header('X-Api-Key')} via {request.header('Authorization')} refused"
    return Reply(
        body={"orderActionExecutionResults": [{"actionStatus": "Warning", "errorReason": echoed}]}
    )


def echo_basic(request: RecordedRequest) -> Reply:
    echoed = f"ref {request.header('X-Partner-Ref')} unknown"
    return Reply(
        body={"orderActionExecutionResults": [{"actionStatus": "Warning", "errorReason": echoed}]}
    )


async def run_cli(*args: str, env: dict[str, str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        str(RETURNHOOK),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), 60)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    return int(process.returncode or 0), output.decode("utf-8", "replace")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def secrets_receiver() -> AsyncIterator[RecordingReceiver]:
    async with RecordingReceiver() as started:
        yield started


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def secrets_run(
    module_topics: ModuleTopics,
    start_module_worker: StartWorker,
    secrets_receiver: RecordingReceiver,
    tmp_path_factory: pytest.TempPathFactory,
) -> SecretsRun:
    topics = module_topics(partitions=2)
    receiver = secrets_receiver
    receiver.route("/bearer", echo_secrets)
    receiver.route("/basic", echo_basic)
    await publish(topics, secrets_settings(receiver))
    env = {"RETURNHOOK_SHARED_SECRET_PLANTED_ERP_TOKEN": BEARER_TOKEN}
    ports = {"json": free_port(), "text": free_port()}

    def start(log_format: str) -> WorkerProcess:
        return start_module_worker(
            topics,
            web=True,
            log_level="debug",
            env=env,
            extra_args=[*web_args(ports[log_format]), "--log-format", log_format],
        )

    # Two consumer groups on the same topics: each worker handles every input.
    json_worker, text_worker = await asyncio.gather(
        asyncio.to_thread(start, "json"), asyncio.to_thread(start, "text")
    )
    run = SecretsRun(
        topics=topics,
        receiver=receiver,
        json_worker=json_worker,
        text_worker=text_worker,
        ports=ports,
        env=env,
    )
    await produce(
        topics.bootstrap,
        topics.catalog.input.name,
        [
            (order_id(name).encode(), event(tenant(name), order_id(name)))
            for name in ("s-bearer", "s-basic")
        ],
    )
    run.events = await read_json(topics, topics.catalog.events.name, 4)
    # Each worker logs an outcome line per order once it has produced it.
    for worker in (json_worker, text_worker):
        for name in ("s-bearer", "s-basic"):
            await asyncio.to_thread(worker.wait_for_log, re.escape(order_id(name)), 20)
    for label, port in ports.items():
        for path in ("/metrics", "/returnhook/stats/"):
            status, body = await get(port, path)
            assert status == 200, (label, path, body[:300])
            run.pages[f"{label} {path}"] = body

    # With calls in flight: both workers (own groups) call both held tenants; nothing answers
    # until every one of the four calls has arrived and both workers were scraped.
    gate = asyncio.Event()
    receiver.route("/held", Reply(hold=gate, body={"orderActionExecutionResults": [{}]}))
    try:
        await produce(
            topics.bootstrap,
            topics.catalog.input.name,
            [(order_id(name).encode(), event(tenant(name), order_id(name))) for name in HELD],
        )
        await receiver.wait_for_requests(2 * len(HELD), path="/held", timeout=30)
        for label, port in ports.items():
            for path in ("/metrics", "/returnhook/stats/"):
                status, body = await get(port, path)
                assert status == 200, (label, path, body[:300])
                run.held_pages[f"{label} {path} (calls in flight)"] = body
    finally:
        gate.set()
    held_ids = {order_id(name) for name in HELD}
    events = await read_json(topics, topics.catalog.events.name, 4 + 2 * len(HELD))
    run.held_events = [e for e in events if e["orderId"] in held_ids]
    for worker in (json_worker, text_worker):
        for name in HELD:
            await asyncio.to_thread(worker.wait_for_log, re.escape(order_id(name)), 20)

    # The CLI as an operator runs it, with the worker's environment (the secret's variable set)
    # and a config file whose broker URL carries a password.
    config_file = tmp_path_factory.mktemp("config") / "worker.yaml"
    config_file.write_text(
        yaml.safe_dump({"broker": f"kafka://svc:{BROKER_PASSWORD}@127.0.0.1:9092"})
    )
    cli_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("RETURNHOOK_")},
        **env,
        "RETURNHOOK_TOPICS_FILE": str(topics.path),
    }
    with_broker = {**cli_env, "RETURNHOOK_BROKER": topics.bootstrap}
    commands = {
        "config show": (["config", "show", "--config", str(config_file)], cli_env),
        "config show (env)": (["config", "show"], with_broker),
        "settings list": (["settings", "list"], with_broker),
        **{
            f"settings show {name}": (["settings", "show", tenant(name)], with_broker)
            for name in ("s-bearer", "s-basic")
        },
    }
    results = await asyncio.gather(*(run_cli(*args, env=e) for args, e in commands.values()))
    run.cli = dict(zip(commands, results, strict=True))
    return run


async def test_the_webhook_gets_the_secrets(secrets_run: SecretsRun) -> None:
    """The masking is of what is shown, not of what is sent."""
    bearer = secrets_run.receiver.requests_for("/bearer")
    basic = secrets_run.receiver.requests_for("/basic")
    assert len(bearer) == 4 and len(basic) == 2  # two workers; /bearer fails once for each
    assert {r.header("Authorization") for r in bearer} == {f"Bearer {BEARER_TOKEN}"}
    assert {r.header("X-Api-Key") for r in bearer} == {API_KEY}
    assert {r.header("Authorization") for r in basic} == {f"Basic {BASIC_PAIR}"}
    assert {r.header("X-Partner-Ref") for r in basic} == {PARTNER_REF}
    statuses = Counter((e["tenantId"], e["actionStatus"]) for e in secrets_run.events)
    assert statuses == {(tenant("s-bearer"), "Warning"): 2, (tenant("s-basic"), "Warning"): 2}


def assert_no_secret(text: str, where: str) -> None:
    leaked = [name for name, secret in SECRETS.items() if secret in text]
    assert not leaked, f"{', '.join(leaked)} leaked into {where}"


async def test_no_secret_in_the_json_log(secrets_run: SecretsRun) -> None:
    worker = secrets_run.json_worker
    log = worker.log_text()
    lines = [line for line in log.splitlines() if line.strip()]
    parsed = []
    for line in lines:
        try:
            parsed.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            pass
    # Every logged line is JSON (faust's tables are multi-line messages inside one object).
    assert len(parsed) == len(lines), [ln for ln in lines if not ln.startswith("{")][:5]
    outcomes = [p for p in parsed if p["message"].startswith("outcome ")]
    # The echoing tenants end in a Warning; the held ones (answered once released) succeed.
    expected = {
        order_id("s-bearer"): "Warning",
        order_id("s-basic"): "Warning",
        **{order_id(name): "Success" for name in HELD},
    }
    assert {o["order"]: o["status"] for o in outcomes} == expected
    assert len(outcomes) == len(expected)
    for outcome in outcomes:
        assert outcome["level"] == "info"
        assert {"tenant", "step", "status", "attempts", "duration_ms"} <= set(outcome)
    attempts = [p for p in parsed if p["message"].startswith("webhook attempt ")]
    assert attempts and {a["level"] for a in attempts} == {"debug"}
    assert any("HTTP 500" in a["message"] for a in attempts)  # the failing call was logged
    assert_no_secret(log, f"the JSON log {worker.log_path}")


async def test_no_secret_in_the_text_log(secrets_run: SecretsRun) -> None:
    worker = secrets_run.text_worker
    log = worker.log_text()
    assert re.search(r"\[DEBUG\] webhook attempt 1/4 to http://127\.0\.0\.1:\d+: HTTP 500", log)
    assert re.search(rf"\[INFO\] outcome tenant={tenant('s-bearer')} ", log)
    assert "refused" in log and "***" in log  # the echoed reason is logged, masked
    assert_no_secret(log, f"the text log {worker.log_path}")


async def test_no_secret_in_metrics_or_stats(secrets_run: SecretsRun) -> None:
    run = secrets_run
    assert len(run.pages) == len(run.held_pages) == 4
    for where, body in {**run.pages, **run.held_pages}.items():
        assert body, where
        assert_no_secret(body, where)
    assert "returnhook_outcomes_total" in run.pages["json /metrics"]
    assert "uncommitted_events" in run.pages["text /returnhook/stats/"]
    # The held scrapes saw the calls in flight, per host: the series a leak would be in.
    origin = f"http://127.0.0.1:{run.receiver.port}"
    for label in run.ports:
        scraped = samples(run.held_pages[f"{label} /metrics (calls in flight)"])
        assert scraped["returnhook_calls_in_flight"][()] == len(HELD), label
        by_host = by_label(scraped, "returnhook_calls_in_flight_by_host", "host")
        assert by_host == {origin: len(HELD)}, (label, by_host)
        stats = orjson.loads(run.held_pages[f"{label} /returnhook/stats/ (calls in flight)"])
        assert stats["calls_running"] == len(HELD), (label, stats)
        assert stats["calls_running_by_host"] == {origin: len(HELD)}, (label, stats)
    # The calls carried the credentials, and were answered once released.
    held = run.receiver.requests_for("/held")
    assert len(held) == 2 * len(HELD) and {r.status for r in held} == {200}
    assert {r.header("Authorization") for r in held} == {
        f"Basic {URL_PAIR}",
        f"Bearer {BEARER_TOKEN}",
    }
    assert {r.header("X-Partner-Ref") for r in held} == {PARTNER_REF, None}
    assert {r.header("X-Api-Key") for r in held} == {API_KEY, None}
    statuses = Counter((e["tenantId"], e["actionStatus"]) for e in run.held_events)
    assert statuses == {(tenant(name), "Success"): 2 for name in HELD}


async def test_no_secret_in_config_show(secrets_run: SecretsRun) -> None:
    for command in ("config show", "config show (env)"):
        rc, output = secrets_run.cli[command]
        assert rc == 0, output
        assert_no_secret(output, command)
        assert BROKER_PASSWORD not in output, command
        assert "max_in_flight: 256" in output
    assert "kafka://***@127.0.0.1:9092" in secrets_run.cli["config show"][1]


async def test_no_secret_in_settings_show_or_list(secrets_run: SecretsRun) -> None:
    for command, (rc, output) in secrets_run.cli.items():
        if command.startswith("settings"):
            assert rc == 0, f"{command}: {output}"
            assert_no_secret(output, command)
    bearer = yaml.safe_load(secrets_run.cli["settings show s-bearer"][1])
    [connector] = bearer["connectors"]
    assert connector["bearerToken"] == "${shared:PLANTED_ERP_TOKEN}"  # a reference is no secret
    assert connector["customHeaders"] == [{"key": "X-Api-Key", "value": "***"}]
    basic = yaml.safe_load(secrets_run.cli["settings show s-basic"][1])
    [connector] = basic["connectors"]
    assert (connector["username"], connector["password"]) == (BASIC_USER, "***")
    [prop] = [p for p in basic["returnWorkflow"][0]["properties"] if p["key"] == "X-Partner-Ref"]
    assert prop["value"] == "***" and prop["sensitive"] is True
    listing = secrets_run.cli["settings list"][1]
    assert tenant("s-bearer") in listing and tenant("s-basic") in listing
