"""A new user's first hour (issue 16): each trap they hit is caught, on the real broker.

Typos in settings, publishing before `topics apply`, commands that need a broker given none,
a worker started on topics that do not exist.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import orjson
import pytest

from tests.conftest import MakeTopics
from tests.integration.conftest import StartWorker
from tests.integration.test_cli import fresh_topics_file, one_line, returnhook
from tests.integration.traffic import publish, return_event, settings_document
from tests.kafka_helpers import produce, read_topic
from tests.receiver import RecordingReceiver, Reply

pytestmark = pytest.mark.integration

TYPOS = """\
tenantId: acme
connectors:
  - name: Webhook
    connectorId: erp-returns
    host: https://erp.example.com/api/returns
    bearerTokn: secret
    timeout: 30
returnWorkflow:
  - name: WebhookReturnWorkflowStp
  - name: WebhookReturnWorkflowStep
    connectorId: erp-retuns
    stopOnErorr: true
"""

OMNIUM_EXPORT = """\
tenantId: {tenant}
connectors:
  - name: Webhook
    connectorId: erp-returns
    host: https://erp.example.com/api/returns
    isDefault: true
  - name: Klarna
    apiKey: k
returnWorkflow:
  - name: SendReturnConfirmationEmailStep
    emailTemplate: return-received
  - name: WebhookReturnWorkflowStep
    connectorId: erp-returns
"""


async def test_each_typo_is_refused_with_its_path_and_a_suggestion(
    make_topics: MakeTopics, tmp_path: Path
) -> None:
    topics = make_topics(partitions=1)
    file = tmp_path / "acme.yaml"
    file.write_text(TYPOS, encoding="utf-8")

    result = await asyncio.to_thread(
        returnhook, "settings", "publish", file, "--broker", topics.bootstrap,
        "--topics-file", topics.path,
    )  # fmt: skip

    assert result.returncode == 1, result
    text = one_line(result.stderr)
    for expected in [
        "connectors.0.bearerTokn: unknown key; did you mean 'bearerToken'?",
        "connectors.0.timeout: a bare 30 reads as 30 milliseconds",
        "returnWorkflow.0.name: 'WebhookReturnWorkflowStp' is not a step returnhook runs; "
        "did you mean 'WebhookReturnWorkflowStep'?",
        "returnWorkflow.1.stopOnErorr: unknown key; did you mean 'stopOnError'?",
        "returnWorkflow.1.connectorId: 'erp-retuns' matches no connector "
        "(connectorIds: 'erp-returns'); did you mean 'erp-returns'?",
        "Nothing was published.",
    ]:
        assert expected in text, text
    settings = topics.catalog.settings.name
    assert await read_topic(topics.bootstrap, settings, timeout=2.0, idle=1.0) == []


async def test_an_omnium_export_is_published_with_warnings(
    make_topics: MakeTopics, tmp_path: Path
) -> None:
    topics = make_topics(partitions=1)
    file = tmp_path / "export.yaml"
    file.write_text(OMNIUM_EXPORT.format(tenant="omnium-like"), encoding="utf-8")

    result = await asyncio.to_thread(
        returnhook, "settings", "publish", file, "--broker", topics.bootstrap,
        "--topics-file", topics.path,
    )  # fmt: skip

    assert result.returncode == 0, result
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert [w.split(":", 2)[1].strip() for w in warnings] == [
        "connectors.0.isDefault",
        "connectors.1 (Klarna)",
        "returnWorkflow.0 (SendReturnConfirmationEmailStep)",
    ], result.stderr
    assert all("not used by returnhook" in w for w in warnings)
    assert "published settings of 1 tenant(s)" in one_line(result.stdout)


async def test_publish_before_topics_apply_is_refused_and_creates_nothing(
    broker: str, tmp_path: Path
) -> None:
    catalog, topics_file = fresh_topics_file(tmp_path)
    file = tmp_path / "acme.yaml"
    file.write_text(OMNIUM_EXPORT.format(tenant="acme"), encoding="utf-8")

    result = await asyncio.to_thread(
        returnhook, "settings", "publish", file, "--broker", broker, "--topics-file", topics_file
    )

    assert result.returncode == 1, result
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert f"topic {catalog.settings.name} (settings) does not exist" in one_line(result.stderr)
    assert "run `returnhook topics apply` first" in one_line(result.stderr)
    # Nothing auto-created: `topics apply` then creates every topic as the file says.
    apply = await asyncio.to_thread(
        returnhook, "topics", "apply", "--broker", broker, "--topics-file", topics_file
    )
    assert apply.returncode == 0, apply
    assert apply.stdout.count("created") == len(catalog.by_role()), apply.stdout


async def test_a_worker_on_missing_topics_stops_with_one_line(broker: str, tmp_path: Path) -> None:
    catalog, topics_file = fresh_topics_file(tmp_path)

    result = await asyncio.to_thread(
        returnhook, "worker", "--broker", broker, "--topics-file", topics_file, "--without-web"
    )

    assert result.returncode == 1, result
    text = one_line(result.stderr)
    assert f"topic {catalog.input.name} (input) does not exist" in text
    assert "run `returnhook topics apply` first" in text


async def test_a_wrong_cleanup_policy_or_partition_count_is_named(
    make_topics: MakeTopics, tmp_path: Path
) -> None:
    topics = make_topics(partitions=2)
    # The same topics, as a topics file that wants other partitions and no compaction.
    text = topics.path.read_text(encoding="utf-8")
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(
        text.replace("partitions: 2", "partitions: 3").replace("compact", "delete"),
        encoding="utf-8",
    )
    file = tmp_path / "acme.yaml"
    file.write_text(OMNIUM_EXPORT.format(tenant="acme"), encoding="utf-8")

    result = await asyncio.to_thread(
        returnhook, "settings", "publish", file, "--broker", topics.bootstrap,
        "--topics-file", wrong,
    )  # fmt: skip

    assert result.returncode == 1, result
    assert f"topic {topics.catalog.settings.name} (settings) has cleanup.policy=compact, " in (
        one_line(result.stderr)
    )


@pytest.mark.parametrize(
    "command",
    [("settings", "publish", "{file}"), ("topics", "apply"), ("settings", "list")],
)
async def test_commands_that_must_outlive_themselves_refuse_without_a_broker(
    command: tuple[str, ...], tmp_path: Path
) -> None:
    file = tmp_path / "acme.yaml"
    file.write_text(OMNIUM_EXPORT.format(tenant="acme"), encoding="utf-8")
    args = [part.format(file=file) for part in command]

    result = await asyncio.to_thread(returnhook, *args)

    assert result.returncode == 1, result
    text = one_line(result.stderr)
    assert "a running Kafka: give --broker or RETURNHOOK_BROKER" in text
    assert "embedded broker" in text and "started the embedded" not in text


async def test_an_event_sent_before_its_tenants_first_settings_is_processed(
    make_topics: MakeTopics, start_worker: StartWorker, receiver: RecordingReceiver
) -> None:
    topics = make_topics(partitions=1)
    start_worker(topics, env={"RETURNHOOK_SETTINGS_GRACE_S": "10"})
    tenant = f"new-{uuid.uuid4().hex[:6]}"
    receiver.route("/new")

    # The event first, its tenant's settings right after (0 s): the worker has no settings
    # for the tenant when the event arrives, and waits for them instead of dead-lettering.
    await produce(
        topics.bootstrap, topics.catalog.input.name, [(b"o-1", return_event(tenant, "o-1", 1))]
    )
    await publish(topics.bootstrap, topics, [settings_document(tenant, receiver.url("/new"))])

    await receiver.wait_for_requests(1, path="/new")
    events = await read_topic(topics.bootstrap, topics.catalog.events.name, min_count=1, idle=0.5)
    assert [orjson.loads(r.value)["actionStatus"] for r in events] == ["Success"]
    dead = await read_topic(
        topics.bootstrap, topics.catalog.dead_letters.name, timeout=1.0, idle=0.5
    )
    assert dead == []


MARKER = "PLANTED-MARKER-5d1c"


def _marked_event(tenant: str, order_id: str) -> bytes:
    event = orjson.loads(return_event(tenant, order_id, 1))
    event["order"]["customer"] = {"name": MARKER}
    return orjson.dumps(event)


async def test_debug_logs_are_ours_and_no_log_holds_a_payload(
    make_topics: MakeTopics, start_worker: StartWorker, receiver: RecordingReceiver
) -> None:
    topics = make_topics(partitions=1)
    tenant = f"logs-{uuid.uuid4().hex[:6]}"
    # The marker travels in the input, in the webhook's answer and in the order-patch record.
    receiver.route("/logs", Reply(body={"orderPatch": {"tags": [MARKER]}}))
    await publish(topics.bootstrap, topics, [settings_document(tenant, receiver.url("/logs"))])
    scoped = start_worker(topics, log_level="debug", extra_args=["--log-format", "json"])
    wire = start_worker(
        topics, log_level="debug", extra_args=["--log-format", "json", "--log-libraries"]
    )

    await produce(
        topics.bootstrap, topics.catalog.input.name, [(b"o-1", _marked_event(tenant, "o-1"))]
    )
    # Two groups: each worker handles the event (and fetches, calls, produces with it).
    await receiver.wait_for_requests(2, path="/logs")
    assert MARKER in receiver.requests[0].body.decode()  # the payload did travel
    await read_topic(topics.bootstrap, topics.catalog.events.name, min_count=2, idle=0.5)

    def debug_loggers(text: str) -> set[str]:
        lines = [orjson.loads(line) for line in text.splitlines() if line.startswith("{")]
        return {line["logger"] for line in lines if line["level"] == "debug"}

    scoped_text, wire_text = scoped.log_text(), wire.log_text()
    assert MARKER not in scoped_text and MARKER not in wire_text
    ours = debug_loggers(scoped_text)
    assert ours and all(name == "returnhook" or name.startswith("streams.") for name in ours)
    assert any(name.startswith("aiokafka") for name in debug_loggers(wire_text))
    assert "webhook attempt 1/" in scoped_text and "webhook attempt 1/" in wire_text


async def test_a_400_answers_text_is_in_the_error_reason(
    make_topics: MakeTopics, start_worker: StartWorker, receiver: RecordingReceiver
) -> None:
    topics = make_topics(partitions=1)
    tenant = f"strict-{uuid.uuid4().hex[:6]}"
    receiver.route("/strict", Reply(status=400, body=b"ReturnOrderFormId is required\r\n"))
    await publish(topics.bootstrap, topics, [settings_document(tenant, receiver.url("/strict"))])
    start_worker(topics)

    await produce(
        topics.bootstrap, topics.catalog.input.name, [(b"o-1", return_event(tenant, "o-1", 1))]
    )

    events = await read_topic(topics.bootstrap, topics.catalog.events.name, min_count=1, idle=0.5)
    reason = "the webhook answered HTTP 400 (not retried): ReturnOrderFormId is required"
    assert [orjson.loads(r.value)["errorReason"] for r in events] == [reason]
    patches = await read_topic(topics.bootstrap, topics.catalog.patches.name, min_count=1, idle=0.5)
    [entry] = orjson.loads(patches[0].value)["patch"]["errors"]
    assert entry["message"] == reason


async def test_replay_takes_the_workers_call_options_and_says_why(
    make_topics: MakeTopics, receiver: RecordingReceiver
) -> None:
    topics = make_topics(partitions=1)
    tenant = f"replay-{uuid.uuid4().hex[:6]}"
    receiver.route("/strict", Reply(status=400, body=b"ReturnOrderFormId is required"))
    await publish(topics.bootstrap, topics, [settings_document(tenant, receiver.url("/strict"))])
    await produce(
        topics.bootstrap, topics.catalog.input.name, [(b"o-1", return_event(tenant, "o-1", 1))]
    )
    common = ["replay", "--from", "1h", "--broker", topics.bootstrap, "--topics-file", topics.path]

    refused = await asyncio.to_thread(returnhook, *common, "--tenant", tenant, "--dry-run")
    allowed = await asyncio.to_thread(
        returnhook, *common, "--tenant", tenant, "--dry-run", "--egress-allow", "127.0.0.0/8"
    )
    nobody = await asyncio.to_thread(returnhook, *common, "--tenant", "nobody", "--dry-run")
    real = await asyncio.to_thread(
        returnhook, *common, "--tenant", tenant, "--egress-allow", "127.0.0.0/8",
        "--retry-delays", "0.1,0.1,0.1",
    )  # fmt: skip

    assert refused.returncode == 0, refused
    assert "would not be sent: refused by the egress policy" in one_line(refused.stdout)
    assert allowed.returncode == 0, allowed
    assert "would not be sent" not in allowed.stdout and "/strict" in allowed.stdout
    assert "tenant nobody has no settings on" in one_line(nobody.stdout), nobody
    assert real.returncode == 0, real
    assert (
        f"failure reasons: {tenant}: 1 × the webhook answered HTTP 400 (not retried): "
        "ReturnOrderFormId is required"
    ) in one_line(real.stdout), real.stdout
