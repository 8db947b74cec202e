"""The `returnhook` command as an operator runs it: a subprocess, its output, its exit code, and
what it did to the broker (read back, never taken from the command's word)."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import time
import uuid
from pathlib import Path

import orjson
import pytest
import yaml

from models.settings import TenantSettings
from streams.kafka.topics import REPO_TOPICS_FILE, TopicCatalog, dump_topics, load_topics
from tests.conftest import MakeTopics, TestTopics
from tests.integration.conftest import StartWorker
from tests.integration.worker_process import RETURNHOOK
from tests.kafka_helpers import partition_count, read_topic

pytestmark = pytest.mark.integration


def returnhook(*args: str | Path, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Runs the console script without any RETURNHOOK_* of the developer's shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETURNHOOK_")}
    return subprocess.run(
        [str(RETURNHOOK), *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def one_line(text: str) -> str:
    """Whitespace folded, so a check does not depend on where a console wrapped a line."""
    return " ".join(text.split())


INVALID_SETTINGS = """\
- tenantId: fine-{suffix}
  returnWorkflow:
    - name: WebhookReturnWorkflowStep
      properties: [{{key: Host, value: "https://erp.example.com/returns"}}]
- tenantId: broken-{suffix}
  unexpected: 1
  connectors:
    - name: Webhook
      host: ftp://erp.example.com
      timeout: soon
  returnWorkflow:
    - name: WebhookReturnWorkflowStep
      stopOnError: maybe
      properties:
        - {{key: "Bad Header", value: x, keyGroup: RequestHeaders}}
"""


async def test_publish_rejects_an_invalid_file_naming_every_bad_field(
    make_topics: MakeTopics, tmp_path: Path
) -> None:
    topics = make_topics(partitions=1)
    suffix = uuid.uuid4().hex[:6]
    file = tmp_path / "settings.yaml"
    file.write_text(INVALID_SETTINGS.format(suffix=suffix), encoding="utf-8")

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
    lines = result.stderr.splitlines()
    # One line per problem, each starting with the field's path (the list index first).
    for path, problem in [
        ("[1].connectors.0.host", "is not an http:// or https:// URL"),
        ("[1].connectors.0.timeout", "'soon' is not a TimeSpan"),
        ("[1].returnWorkflow.0.stopOnError", "valid boolean"),
        ("[1].returnWorkflow.0.properties.0", "'Bad Header' is not a valid HTTP header name"),
        ("[1].unexpected", "Extra inputs are not permitted"),
    ]:
        assert any(line.strip().startswith(f"{path}:") and problem in line for line in lines), (
            f"{path} not reported as {problem!r}:\n{result.stderr}"
        )
    assert str(file) in one_line(result.stderr)
    assert "Nothing was published." in result.stderr
    assert not any(line.strip().startswith("[0]") for line in lines)  # the valid one is fine
    # Not even the valid tenant: all or nothing.
    written = await read_topic(
        topics.bootstrap, topics.catalog.settings.name, timeout=2.0, idle=1.0
    )
    assert written == []


async def test_publish_writes_each_tenant_keyed_by_tenant_id(
    make_topics: MakeTopics, tmp_path: Path
) -> None:
    topics = make_topics(partitions=1)
    suffix = uuid.uuid4().hex[:6]
    acme, globex = f"acme-{suffix}", f"globex-{suffix}"
    documents = [
        {
            "tenantId": acme,
            "connectors": [
                {
                    "name": "Webhook",
                    "connectorId": "erp-returns",
                    "host": "https://erp.example.com/api/returns",
                    "bearerToken": "${ERP_TOKEN}",
                    "timeout": "00:00:30",
                    "customHeaders": [{"key": "X-Api-Key", "value": "abc"}],
                    "enabledForMarkets": ["NOR"],
                }
            ],
            "returnWorkflow": [
                {
                    "name": "WebhookReturnWorkflowStep",
                    "connector": "Webhook",
                    "connectorId": "erp-returns",
                    "stopOnError": True,
                    "properties": [{"key": "ErrorStatus", "value": "ReturnFailed"}],
                }
            ],
        },
        {
            "tenantId": globex,
            "returnWorkflow": [
                {
                    "name": "WebhookReturnWorkflowStep",
                    "properties": [{"key": "Host", "value": "https://globex.example.com/r"}],
                }
            ],
        },
    ]
    file = tmp_path / "settings.yaml"
    file.write_text(yaml.safe_dump(documents, sort_keys=False), encoding="utf-8")

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

    assert result.returncode == 0, result
    settings_topic = topics.catalog.settings.name
    assert one_line(result.stdout) == (
        f"published settings of 2 tenant(s) to {settings_topic}: {acme}, {globex}"
    )
    records = await read_topic(topics.bootstrap, settings_topic, min_count=2, idle=1.0)
    assert [r.key for r in records] == [acme.encode(), globex.encode()]
    by_tenant = {r.key.decode(): orjson.loads(r.value) for r in records}
    for document in documents:
        published = by_tenant[document["tenantId"]]
        assert TenantSettings.model_validate(published) == TenantSettings.model_validate(document)
    # A secret given as an env reference is published as the reference, never expanded.
    assert by_tenant[acme]["connectors"][0]["bearerToken"] == "${ERP_TOKEN}"

    # A JSON file with one tenant: the update is one more record for that key.
    update = tmp_path / "globex.json"
    changed = {**documents[1], "returnWorkflow": [{**documents[1]["returnWorkflow"][0]}]}
    changed["returnWorkflow"][0]["stopOnError"] = True
    update.write_bytes(orjson.dumps(changed))
    again = await asyncio.to_thread(
        returnhook,
        "settings",
        "publish",
        update,
        "--broker",
        topics.bootstrap,
        "--topics-file",
        topics.path,
    )
    assert again.returncode == 0, again
    records = await read_topic(topics.bootstrap, settings_topic, min_count=3, idle=1.0)
    assert [r.key for r in records] == [acme.encode(), globex.encode(), globex.encode()]
    latest = TenantSettings.model_validate_json(records[-1].value)
    assert latest.return_workflow[0].stop_on_error is True


def fresh_topics_file(directory: Path, partitions: int = 2) -> tuple[TopicCatalog, Path]:
    """A topics file whose topics do not exist on the broker yet."""
    suffix = uuid.uuid4().hex[:8]
    base = load_topics(REPO_TOPICS_FILE)
    catalog = TopicCatalog.model_validate(
        {
            role: spec.model_copy(
                update={
                    "name": f"{spec.name}-cli-{suffix}",
                    "partitions": 1 if role == "settings" else partitions,
                    "replication_factor": 1,
                }
            )
            for role, spec in base.by_role().items()
        }
    )
    return catalog, dump_topics(catalog, directory / f"topics-{suffix}.yaml")


def table_rows(stdout: str) -> dict[str, list[str]]:
    """Rows of rich's box table by role: the cells between the vertical bars."""
    rows: dict[str, list[str]] = {}
    for line in stdout.splitlines():
        cells = [c.strip() for c in re.split(r"[│┃|]", line)[1:-1]]
        if len(cells) == 4 and cells[0] and cells[0] != "role":
            rows[cells[0]] = cells
    return rows


async def test_topics_apply_creates_then_is_idempotent(broker: str, tmp_path: Path) -> None:
    catalog, file = fresh_topics_file(tmp_path, partitions=3)

    first = await asyncio.to_thread(
        returnhook, "topics", "apply", "--broker", broker, "--topics-file", file
    )

    assert first.returncode == 0, first
    rows = table_rows(first.stdout)
    assert set(rows) == set(catalog.by_role()), first.stdout
    assert {"input", "settings", "attempts", "redrives", "progress"} <= set(rows)
    for role, spec in catalog.by_role().items():
        _, name, action, detail = rows[role]
        assert name == spec.name  # in full, not cut short
        assert action == "created"
        assert f"{spec.partitions} partition" in detail
        assert await partition_count(broker, spec.name) == spec.partitions

    second = await asyncio.to_thread(
        returnhook, "topics", "apply", "--broker", broker, "--topics-file", file
    )

    assert second.returncode == 0, second
    again = table_rows(second.stdout)
    assert {role: cells[1] for role, cells in again.items()} == {
        role: spec.name for role, spec in catalog.by_role().items()
    }
    assert {cells[2] for cells in again.values()} == {"exists"}


async def test_worker_without_a_broker_starts_the_embedded_one(
    start_worker: StartWorker, tmp_path: Path
) -> None:
    catalog, file = fresh_topics_file(tmp_path, partitions=1)
    topics = TestTopics(catalog=catalog, path=file, bootstrap="unused")
    worker = await asyncio.to_thread(start_worker, topics, broker=None, wait=False)

    found = await asyncio.to_thread(
        worker.wait_for_log,
        r"started\s+the\s+embedded\s+broker\s+at\s+127\.0\.0\.1:(\d+)\s+\(pid\s+(\d+)\)",
    )
    assert "No broker configured" in one_line(worker.log_text())
    broker_pid = int(found.group(2))
    await asyncio.to_thread(worker.wait_ready, 30.0)  # a working worker, on that broker
    assert worker.running

    assert await asyncio.to_thread(worker.stop) == 0
    # The embedded broker goes with it.
    gone = await asyncio.to_thread(_gone_within, broker_pid, 5.0)
    assert gone, f"the embedded broker (pid {broker_pid}) outlived the worker"


def _gone_within(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "zombie" not in status
