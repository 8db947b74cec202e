"""Issue 17 on the real broker: a tenant's settings reach only its own secrets and only URLs
the client reads as written, and no URL can crash the worker.

One worker serves the module. Its environment holds another tenant's secret and an arbitrary
planted variable; the refusals are checked twice: `settings publish` refuses the settings with
the field's path, and the same settings produced straight onto the topic (past the CLI) give
each step an Error outcome with no expansion and no call, while the worker keeps running.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import orjson
import pytest
import yaml

from models.secret_reference import secret_env_name
from tests.conftest import MakeTopics
from tests.integration.conftest import StartWorker
from tests.integration.test_cli import returnhook
from tests.integration.traffic import (
    outcome_id,
    publish,
    return_event,
    settings_document,
)
from tests.kafka_helpers import produce, read_topic
from tests.receiver import RecordingReceiver

pytestmark = pytest.mark.integration

SUFFIX = uuid.uuid4().hex[:6]
BETA = f"beta-{SUFFIX}"
BETA_TOKEN = f"beta-token-{uuid.uuid4().hex}"  # beta's own secret
PLANTED = f"planted-{uuid.uuid4().hex}"  # a variable of the worker, no tenant's secret
PLANTED_VAR = f"PLANTED_{SUFFIX.upper()}"
ENV = {secret_env_name(BETA, "TOKEN") or "": BETA_TOKEN, PLANTED_VAR: PLANTED}


def tenant(name: str) -> str:
    return f"{name}-{SUFFIX}"


def hostile_documents(receiver: RecordingReceiver) -> dict[str, dict]:
    """What a tenant's administrator might write to reach beyond its tenant."""
    port = receiver.port
    header = {"key": "X-Leak", "keyGroup": "RequestHeaders"}

    def with_header(name: str, value: str) -> dict:
        document = settings_document(tenant(name), receiver.url(f"/{name}"))
        document["returnWorkflow"][0]["properties"].append({**header, "value": value})
        return document

    def with_host(name: str, host: str) -> dict:
        return settings_document(tenant(name), host)

    other = secret_env_name(BETA, "TOKEN")
    return {
        # another tenant's secret, spelled as the worker's variable
        "other-tenant": {
            "tenantId": tenant("other-tenant"),
            "connectors": [{"host": receiver.url("/other-tenant"), "bearerToken": f"${{{other}}}"}],
            "returnWorkflow": [{"name": "WebhookReturnWorkflowStep"}],
        },
        # the worker's own configuration
        "worker-var": with_header("worker-var", "${RETURNHOOK_BROKER}"),
        "fullwidth": with_host("fullwidth", f"http://１２７.０.０.１:{port}/unicode"),
        "ideographic": with_host("ideographic", f"http://127。0。0。1:{port}/unicode"),
        "circled": with_host("circled", f"http://①②⑦.0.0.1:{port}/unicode"),
        "bad-port": with_host("bad-port", "http://example.invalid:99999/x"),
    }


PUBLISH_PROBLEMS = {
    "other-tenant": ("connectors.0.bearerToken", "worker's own variables"),
    "worker-var": ("returnWorkflow.0.properties.1", "worker's own variables"),
    "fullwidth": ("returnWorkflow.0", "properties[0].value (Host): the host of"),
    "ideographic": ("returnWorkflow.0", "properties[0].value (Host): the host of"),
    "circled": ("returnWorkflow.0", "properties[0].value (Host): the host of"),
    "bad-port": ("returnWorkflow.0", "properties[0].value (Host): the port of"),
}


async def test_settings_reaching_beyond_the_tenant_are_refused_at_publish_and_fail_at_run_time(
    make_topics: MakeTopics,
    start_worker: StartWorker,
    receiver: RecordingReceiver,
    tmp_path: Path,
) -> None:
    topics = make_topics(partitions=1)
    receiver.route("/beta")
    receiver.route("/good")
    documents = hostile_documents(receiver)
    # An arbitrary variable in the tenant's own namespace: valid to publish, empty at run time.
    arbitrary = settings_document(tenant("arbitrary"), receiver.url("/arbitrary"))
    arbitrary["returnWorkflow"][0]["properties"].append(
        {"key": "X-Leak", "keyGroup": "RequestHeaders", "value": f"${{{PLANTED_VAR}}}"}
    )
    beta = {
        "tenantId": BETA,
        "connectors": [{"host": receiver.url("/beta"), "bearerToken": "${TOKEN}"}],
        "returnWorkflow": [{"name": "WebhookReturnWorkflowStep"}],
    }
    good = settings_document(tenant("good"), receiver.url("/good"))

    # 1. settings publish refuses each, naming the field; nothing is published.
    names = list(documents)
    file = tmp_path / "hostile.yaml"
    file.write_text(yaml.safe_dump([documents[n] for n in names], allow_unicode=True), "utf-8")
    result = await asyncio.to_thread(
        returnhook,
        "settings",
        "publish",
        file,
        "--broker",
        topics.bootstrap,
        "--topics-file",
        topics.path,
    )
    assert result.returncode == 1, result
    lines = [line.strip() for line in result.stderr.splitlines()]
    for index, name in enumerate(names):
        path, problem = PUBLISH_PROBLEMS[name]
        assert any(line.startswith(f"[{index}].{path}") and problem in line for line in lines), (
            f"{name}: {path} not reported as {problem!r}:\n{result.stderr}"
        )
    assert PLANTED not in result.stderr and BETA_TOKEN not in result.stderr

    # 2. Past the CLI: the same documents straight onto the settings topic, and the valid ones.
    await publish(topics.bootstrap, topics, [arbitrary, beta, good])
    await produce(
        topics.bootstrap,
        topics.catalog.settings.name,
        [(tenant(n).encode(), orjson.dumps(documents[n])) for n in names],
    )
    worker = await asyncio.to_thread(start_worker, topics, log_level="debug", env=ENV)
    order_of = {name: f"o-{name}-{SUFFIX}" for name in [*names, "arbitrary"]}
    events = [(tenant(n).encode(), return_event(tenant(n), order_of[n], 1)) for n in order_of]
    events.append((BETA.encode(), return_event(BETA, f"o-beta-{SUFFIX}", 1)))
    # Last on the one partition: processed only if nothing before it stopped the worker.
    events.append((tenant("good").encode(), return_event(tenant("good"), f"o-good-{SUFFIX}", 1)))
    await produce(topics.bootstrap, topics.catalog.input.name, events)

    await receiver.wait_for_requests(1, path="/good", timeout=60)
    records = await read_topic(topics.bootstrap, topics.catalog.events.name, min_count=len(events))
    outcomes = {orjson.loads(r.value)["id"]: orjson.loads(r.value) for r in records}
    for name in order_of:
        outcome = outcomes[outcome_id(tenant(name), order_of[name], 1)]
        assert outcome["actionStatus"] == "Error", (name, outcome)
        assert outcome["attempts"] == 0, (name, outcome)
        assert outcome["errorReason"].startswith("not sent: "), (name, outcome)
    arbitrary_outcome = outcomes[outcome_id(tenant("arbitrary"), order_of["arbitrary"], 1)]
    assert arbitrary_outcome["errorReason"] == (
        f"not sent: secret {PLANTED_VAR} is not available to tenant {tenant('arbitrary')!r}"
    )
    beta_outcome = outcomes[outcome_id(BETA, f"o-beta-{SUFFIX}", 1)]
    assert beta_outcome["actionStatus"] == "Success"
    assert worker.returncode is None  # still running after port 99999 and the rest

    # Only beta's own request and the good one reached the receiver; beta got its own token.
    paths = sorted(r.path for r in receiver.requests)
    assert paths == ["/beta", "/good"], paths
    assert receiver.requests_for("/beta")[0].header("Authorization") == f"Bearer {BETA_TOKEN}"
    assert receiver.requests_for("/unicode") == []

    # The planted variable reached no endpoint, no record and no log line.
    everything = b"".join(r.value for r in records)
    patches = await read_topic(topics.bootstrap, topics.catalog.patches.name, idle=0.5)
    everything += b"".join(r.value for r in patches)
    for request in receiver.requests:
        everything += request.body + orjson.dumps(dict(request.headers))
    assert PLANTED.encode() not in everything
    assert BETA_TOKEN.encode() not in everything.replace(
        receiver.requests_for("/beta")[0].header("Authorization").encode(), b""
    )
    log = worker.log_text()
    assert PLANTED not in log and BETA_TOKEN not in log
