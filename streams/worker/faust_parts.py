"""The faust pieces the worker is built from: the app with our rebalance and stop hooks, the
settings GlobalTable over an external topic, raw-bytes topics, and the services that start and
stop the HTTP session and the progress records with the app.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import faust
import mode
from faust.tables.globaltable import GlobalTable

from streams.http.webhook_client import WebhookClient
from streams.kafka.progress_reader import ProgressReader
from streams.worker.batch_intake import BatchHandler, BatchIntakeConsumer
from streams.worker.progress import ProgressBook


def raw_topic(app: faust.App, name: str, partitions: int | None = None) -> faust.TopicT:
    return app.topic(
        name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=partitions,
        internal=False,
    )


class FaustApp(faust.App):
    """Lets our lanes drain before faust waits, unbounded, for un-acked events."""

    before_revoke: Callable[[], None] | None = None
    before_stop: Callable[[], Awaitable[None]] | None = None
    on_input_sought: Callable[[Mapping[Any, int | None]], None] | None = None
    """Called by SeekFirstRecovery with each input partition's starting offset."""
    before_input: Callable[[], Awaitable[None]] | None = None
    """Awaited by SeekFirstRecovery after the seek, before the input partitions are fetched."""

    input_topic_name: str | None = None
    on_input_batch: BatchHandler | None = None
    """Where BatchIntakeConsumer hands the input topic's records, a fetch at a time."""

    def _new_consumer(self) -> Any:
        transport = self.transport
        consumer = BatchIntakeConsumer(
            transport,
            callback=self.topics.on_message,
            on_partitions_revoked=self._on_partitions_revoked,
            on_partitions_assigned=self._on_partitions_assigned,
            beacon=self.beacon,
            loop=transport.loop,
        )
        consumer.batch_topic = self.input_topic_name
        consumer.on_batch = self.on_input_batch
        return consumer

    def on_rebalance_start(self) -> None:
        super().on_rebalance_start()
        if self.before_revoke is not None:
            self.before_revoke()

    async def on_stop(self) -> None:
        if self.before_stop is not None:
            await self.before_stop()
        await super().on_stop()


class SettingsTable(GlobalTable):
    """A GlobalTable over the settings topic that ``returnhook settings publish`` writes.

    faust's assignor finds a table's changelog by ``_changelog_topic_name()`` (normally
    ``<app>-<table>-changelog``), not by the topic we pass in; without this the group leader's
    assignment fails with a KeyError and the worker hangs after "Elected group leader".
    """

    def _changelog_topic_name(self) -> str:
        return self.changelog_topic.get_topic_name()


class ClientService(mode.Service):
    """Opens the worker's one HTTP session with the app and closes it on the way out."""

    def __init__(self, client: WebhookClient) -> None:
        super().__init__()
        self.client = client

    async def on_start(self) -> None:
        await self.client.start()

    async def on_stop(self) -> None:
        await self.client.close()


class ProgressService(mode.Service):
    """Tails the progress topic, and writes progress records every commit interval (and when
    a delivery starts waiting)."""

    def __init__(
        self,
        reader: ProgressReader,
        book: ProgressBook,
        interval_s: float,
        views: Callable[[], Any],
    ) -> None:
        super().__init__()
        self.reader, self.book, self.interval_s, self.views = reader, book, interval_s, views
        self._task: asyncio.Task[None] | None = None

    async def on_start(self) -> None:
        await self.reader.start()
        self._task = asyncio.create_task(self.book.run(self.interval_s, self.views))

    async def on_stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.reader.stop()


def broker_urls(broker: str) -> list[str]:
    return [f"kafka://{host.strip()}" for host in broker.split(",") if host.strip()]
