"""Fixtures for tests that run real workers (subprocesses) against the session's broker.

- `start_worker(topics, **opts)`: a worker for one test, started and ready; stopped at teardown.
- `module_topics(...)` / `start_module_worker(topics, **opts)`: the same, shared by a module, for
  scenarios that can run side by side on one worker (a worker start costs 3–5 s here).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from streams.topics import REPO_TOPICS_FILE, TopicCatalog, dump_topics, load_topics
from tests.conftest import TestTopics, _run
from tests.integration.worker_process import WorkerProcess

StartWorker = Callable[..., WorkerProcess]
ModuleTopics = Callable[..., TestTopics]


def unique_app_id(prefix: str = "rh-test") -> str:
    """A fresh consumer group per worker set: the broker keeps a group's first session timeout."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class WorkerFactory:
    """Starts workers with the test defaults and stops every one of them at the end."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.workers: list[WorkerProcess] = []

    def __call__(
        self,
        topics: TestTopics,
        *,
        app_id: str | None = None,
        wait: bool = True,
        ready_timeout: float = 30.0,
        **opts: Any,
    ) -> WorkerProcess:
        """`opts` go to WorkerProcess (log_level, retry_delays, extra_args, env, broker, …)."""
        app_id = app_id or unique_app_id()
        opts.setdefault("broker", topics.bootstrap)
        count = len(self.workers) + 1
        worker = WorkerProcess(
            topics_file=topics.path,
            app_id=app_id,
            log_path=self.directory / f"worker-{count}-{app_id}.log",
            **opts,
        )
        self.workers.append(worker)
        worker.start()
        if wait:
            worker.wait_ready(timeout=ready_timeout)
        return worker

    def stop_all(self) -> None:
        for worker in self.workers:
            worker.cleanup()


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[StartWorker]:
    """`start_worker(topics, **opts)`: a ready worker on `topics`; all are stopped at teardown."""
    factory = WorkerFactory(tmp_path / "workers")
    try:
        yield factory
    finally:
        factory.stop_all()


@pytest.fixture(scope="module")
def start_module_worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartWorker]:
    """Like `start_worker`, but the workers live until the module's last test is done."""
    factory = WorkerFactory(tmp_path_factory.mktemp("workers"))
    try:
        yield factory
    finally:
        factory.stop_all()


def create_topics(
    bootstrap: str, directory: Path, *, partitions: int = 4, settings_partitions: int = 1
) -> TestTopics:
    """Fresh, uniquely named copies of the catalog's topics on the broker, and their file.

    What `make_topics` (tests/conftest.py) does, for fixtures wider than one test.
    """
    from streams.topic_admin import apply_topics

    suffix = uuid.uuid4().hex[:8]
    base = load_topics(REPO_TOPICS_FILE)
    catalog = TopicCatalog.model_validate(
        {
            role: spec.model_copy(
                update={
                    "name": f"{spec.name}-{suffix}",
                    "partitions": settings_partitions if role == "settings" else partitions,
                    "replication_factor": 1,
                }
            )
            for role, spec in base.by_role().items()
        }
    )
    _run(apply_topics(bootstrap, catalog))
    path = dump_topics(catalog, directory / f"topics-{suffix}.yaml")
    return TestTopics(catalog=catalog, path=path, bootstrap=bootstrap)


@pytest.fixture(scope="module")
def module_topics(broker: str, tmp_path_factory: pytest.TempPathFactory) -> ModuleTopics:
    """`module_topics(partitions=4, settings_partitions=1)`: topics shared by a module's tests."""
    directory = tmp_path_factory.mktemp("topics")

    def make(partitions: int = 4, settings_partitions: int = 1) -> TestTopics:
        return create_topics(
            broker, directory, partitions=partitions, settings_partitions=settings_partitions
        )

    return make
