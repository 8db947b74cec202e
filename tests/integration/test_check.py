"""`returnhook check` against the session's broker: healthy, then a topic missing and a
partition count and a cleanup policy that differ from topics.yaml."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from streams.kafka.topics import TopicCatalog, dump_topics
from tests.conftest import MakeTopics
from tests.integration.test_cli import one_line, returnhook

pytestmark = pytest.mark.integration


def test_healthy_cluster_passes(make_topics: MakeTopics) -> None:
    topics = make_topics(partitions=3)
    done = returnhook(
        "check",
        "--broker",
        topics.bootstrap,
        "--topics-file",
        topics.path,
        "--app-id",
        f"never-ran-{uuid.uuid4().hex[:6]}",
    )
    text = one_line(done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "FAIL" not in text
    assert f"topic {topics.catalog.input.name} (input) │ ok │ 3 partitions" in text
    assert "cleanup.policy=compact" in text  # the settings topic
    assert "settings topic" in text and "0 tenant(s) with settings" in text
    assert "no worker is running" in text
    assert "security handshake │ ok │ PLAINTEXT" in text


def test_missing_topic_and_wrong_partitions_fail(make_topics: MakeTopics, tmp_path: Path) -> None:
    topics = make_topics(partitions=3)
    catalog = topics.catalog
    wanted = TopicCatalog.model_validate(
        {
            **catalog.by_role(),
            "input": catalog.input.model_copy(update={"partitions": 6}),
            "events": catalog.events.model_copy(update={"name": f"absent-{uuid.uuid4().hex[:6]}"}),
            "patches": catalog.patches.model_copy(
                update={"configs": {"cleanup.policy": "compact"}}
            ),
        }
    )
    path = dump_topics(wanted, tmp_path / "wanted.yaml")
    done = returnhook("check", "--broker", topics.bootstrap, "--topics-file", path)
    text = one_line(done.stdout)
    assert done.returncode == 1, text
    assert "3 partitions, topics.yaml wants 6" in text
    assert f"topic {wanted.events.name} (events) │ FAIL │ missing" in text
    assert "cleanup.policy=delete, topics.yaml wants compact" in text


def test_unreachable_broker_fails_the_check(tmp_path: Path) -> None:
    from streams.processes.ports import free_port

    broker = f"127.0.0.1:{free_port('127.0.0.1')}"
    done = returnhook("check", "--broker", broker)
    assert done.returncode == 1
    assert "connection refused" in one_line(done.stdout)
