"""Fixtures shared by unit and integration tests: one broker per session, fresh topics per test."""

from __future__ import annotations

import asyncio
import concurrent.futures
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from streams.kafka.embedded_broker import EmbeddedBroker
from streams.kafka.topic_admin import apply_topics
from streams.kafka.topics import ENV_VAR, REPO_TOPICS_FILE, TopicCatalog, dump_topics, load_topics
from tests.receiver import RecordingReceiver


@dataclass(frozen=True)
class TestTopics:
    """A test's own topics: on the broker, and in a topics file the code under test can load."""

    __test__ = False  # not a test class, despite the name

    catalog: TopicCatalog
    path: Path
    bootstrap: str

    @property
    def env(self) -> dict[str, str]:
        """Environment for a worker subprocess so that it loads these topics."""
        return {ENV_VAR: str(self.path)}


MakeTopics = Callable[..., TestTopics]
T = TypeVar("T")


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap servers of a broker shared by the session; its log is in pytest's tmp dir."""
    log = tmp_path_factory.mktemp("broker") / "tansu.log"
    with EmbeddedBroker(log_path=log) as embedded:
        yield embedded.bootstrap


@pytest.fixture
def make_topics(broker: str, tmp_path: Path) -> MakeTopics:
    """`make_topics(partitions=4, settings_partitions=1)`: the catalog's topics, renamed per test.

    Names get one random suffix per call (`order-status-changed-1a2b3c4d`), so tests never see
    each other's records on the shared broker. Synchronous on purpose: usable from sync and
    async tests alike (creation takes milliseconds).
    """
    created = 0

    def make(partitions: int = 4, settings_partitions: int = 1) -> TestTopics:
        nonlocal created
        created += 1
        return create_topics(
            broker,
            tmp_path,
            partitions=partitions,
            settings_partitions=settings_partitions,
            file_name="topics.yaml" if created == 1 else f"topics-{created}.yaml",
        )

    return make


def create_topics(
    bootstrap: str,
    directory: Path,
    *,
    partitions: int = 4,
    settings_partitions: int = 1,
    file_name: str | None = None,
) -> TestTopics:
    """Fresh copies of the catalog's topics on the broker, and their file in `directory`.

    Also for fixtures wider than one test, which cannot use `make_topics`.
    """
    suffix = uuid.uuid4().hex[:8]
    base = load_topics(REPO_TOPICS_FILE)
    renamed = {
        role: spec.model_copy(
            update={
                "name": f"{spec.name}-{suffix}",
                "partitions": (
                    settings_partitions
                    if role == "settings"
                    else 1
                    if role == "progress"
                    else partitions
                ),
                "replication_factor": 1,
            }
        )
        for role, spec in base.by_role().items()
    }
    catalog = TopicCatalog.model_validate(renamed)
    _run(apply_topics(bootstrap, catalog))
    path = dump_topics(catalog, directory / (file_name or f"topics-{suffix}.yaml"))
    return TestTopics(catalog=catalog, path=path, bootstrap=bootstrap)


@pytest.fixture
async def receiver() -> AsyncIterator[RecordingReceiver]:
    """A started webhook receiver on 127.0.0.1; routes are scripted by the test."""
    async with RecordingReceiver() as started:
        yield started


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion even when the caller's thread already runs a loop."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
