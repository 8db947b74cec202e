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

from tests.conftest import TestTopics, create_topics
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


@pytest.fixture(scope="module")
def module_topics(broker: str, tmp_path_factory: pytest.TempPathFactory) -> ModuleTopics:
    """`module_topics(partitions=4, settings_partitions=1)`: topics shared by a module's tests."""
    directory = tmp_path_factory.mktemp("topics")

    def make(partitions: int = 4, settings_partitions: int = 1) -> TestTopics:
        return create_topics(
            broker, directory, partitions=partitions, settings_partitions=settings_partitions
        )

    return make
