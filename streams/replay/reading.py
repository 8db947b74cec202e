"""Reading the replay's window: topics checked, start offsets by time, the ranges read to where
each partition ended when the replay started, the tenant settings and (``--failed``) the
failed outcomes. A part of ``Replay`` (``streams.replay.run``): it shares the run's state.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord

from streams.kafka.connection import KafkaConnection
from streams.replay.failed import FailedEvents
from streams.replay.report import ReplayError, ReplayRequest, ReplayStats, one_line
from streams.replay.window import format_time

T = TypeVar("T")
_FETCH_MAX_WAIT_MS = 200  # the embedded broker holds every fetch for its full max wait
_POLL_MS = 500
_MAX_RECORDS_PER_POLL = 500


class WindowReader:
    """What ``Replay`` reads from Kafka, before and while it runs the events."""

    request: ReplayRequest
    catalog: Any
    stats: ReplayStats
    _start_ms: int
    _topics: dict[str, list[int]]
    _connection: KafkaConnection
    _failure: BaseException | None

    async def _connect(self, consumer: AIOKafkaConsumer) -> dict[str, list[int]]:
        """Lists the topics with their partitions, checks ours, starts the consumer; bounded."""
        bootstrap, timeout = self.request.bootstrap, self.request.connect_timeout_s
        admin = AIOKafkaAdminClient(
            **self._connection.aiokafka_options(),
            client_id=f"returnhook-{self.request.replay_id}",
            request_timeout_ms=max(1000, int(timeout * 1000)),
        )
        try:
            async with asyncio.timeout(timeout):
                try:
                    await admin.start()
                    # All topics' metadata: naming a missing topic would create it on brokers
                    # with auto-creation on (the embedded one always).
                    described = await admin.describe_topics()
                finally:
                    await admin.close()
                topics = {
                    t["topic"]: sorted(p["partition"] for p in t["partitions"])
                    for t in described
                    if not t.get("error_code")
                }
                self._check_topics(topics)
                await consumer.start()
                # Lets the no-group coordinator's task begin: stopping a consumer before it ran
                # makes aiokafka's stop() raise CancelledError.
                await asyncio.sleep(0)
        except TimeoutError:
            raise ReplayError(
                f"cannot reach Kafka at {bootstrap}: no answer within {timeout:g} s"
            ) from None
        except (KafkaError, OSError) as exc:
            raise ReplayError(f"cannot reach Kafka at {bootstrap}: {one_line(exc)}") from None
        return topics

    def _check_topics(self, existing: Mapping[str, list[int]]) -> None:
        roles = {"input": self.catalog.input, "settings": self.catalog.settings}
        if self.request.failed_only:
            roles["events"] = self.catalog.events
        if not self.request.dry_run:
            roles |= {
                "patches": self.catalog.patches,
                "events": self.catalog.events,
                "deadLetters": self.catalog.dead_letters,
            }
            if self.request.config.attempt_log:
                roles["attempts"] = self.catalog.attempts
        missing = [
            f"{spec.name} ({role})" for role, spec in roles.items() if spec.name not in existing
        ]
        if missing:
            raise ReplayError(
                f"unknown topic{'s' if len(missing) > 1 else ''} on {self.request.bootstrap}: "
                f"{', '.join(missing)}; check --topics-file or run `returnhook topics apply`"
            )

    def _partitions(self, topic: str) -> list[TopicPartition]:
        return [TopicPartition(topic, p) for p in self._topics.get(topic, [])]

    async def _start_offsets(self, consumer: AIOKafkaConsumer) -> dict[TopicPartition, int]:
        tps = self._partitions(self.catalog.input.name)
        # ListOffsets only for assigned partitions: the client keeps metadata of those alone.
        consumer.assign(tps)
        found = await self._bounded(
            consumer.offsets_for_times(dict.fromkeys(tps, self._start_ms)), "offsets by time"
        )
        starts: dict[TopicPartition, int] = {}
        for tp in tps:
            hit = found.get(tp)
            # Kafka: None past the end. The embedded broker: offset 0 with timestamp -1.
            if hit is not None and hit.timestamp is not None and hit.timestamp >= 0:
                starts[tp] = hit.offset
        if not starts:
            raise ReplayError(f"no records on {self.catalog.input.name} {self._window_text()}")
        for tp, offset in starts.items():
            self.stats.ranges[tp.partition] = (offset, None)
        return starts

    async def _read_failed(self, consumer: AIOKafkaConsumer) -> frozenset[tuple[str, str]]:
        """``--failed``: the order-events from ``--from`` to where the topic ends now.

        Not cut at ``--to``: an event's outcome is written after the event (retries take
        time), and a later replay's outcome must count as the latest.
        """
        tps = self._partitions(self.catalog.events.name)
        consumer.assign(tps)
        found = await self._bounded(
            consumer.offsets_for_times(dict.fromkeys(tps, self._start_ms)), "offsets by time"
        )
        starts = {
            tp: hit.offset
            for tp, hit in found.items()
            if hit is not None and hit.timestamp is not None and hit.timestamp >= 0
        }
        failed = FailedEvents()

        async def keep(record: ConsumerRecord) -> None:
            failed.add(record.value)

        await self._read_ranges(consumer, starts, keep)
        return failed.sources()

    async def _bounded(self, call: Awaitable[T], what: str) -> T:
        """A ListOffsets call that cannot hang (aiokafka retries a missing leader forever)."""
        timeout = self.request.connect_timeout_s + 10
        try:
            async with asyncio.timeout(timeout):
                return await call
        except TimeoutError:
            raise ReplayError(
                f"no answer for {what} from {self.request.bootstrap} within {timeout:g} s"
            ) from None
        except KafkaError as exc:
            raise ReplayError(
                f"asking {self.request.bootstrap} for {what}: {one_line(exc)}"
            ) from None

    def _window_text(self) -> str:
        since = f"since {format_time(self.request.start)}"
        if self.request.end is None:
            return since
        return f"between {format_time(self.request.start)} and {format_time(self.request.end)}"

    # -- reading ------------------------------------------------------------------------------

    async def _read_ranges(
        self,
        consumer: AIOKafkaConsumer,
        starts: Mapping[TopicPartition, int],
        handle: Callable[[ConsumerRecord], Awaitable[None]],
        on_stop: Callable[[TopicPartition, int, int], None] | None = None,
    ) -> None:
        """Hands every record from ``starts`` up to each partition's stop to ``handle``.

        The stop is where the partition ended when reading began: the larger of what ListOffsets
        says and the highwater of the first fetch (see the module docstring).
        """
        if not starts:
            return
        tps = list(starts)
        consumer.assign(tps)
        ends = await self._bounded(consumer.end_offsets(tps), "end offsets")
        for tp, offset in starts.items():
            consumer.seek(tp, offset)
        stops: dict[TopicPartition, int] = {}
        reading = set(tps)
        last_progress = time.monotonic()
        while reading:
            if self._failure is not None:
                return
            batches = await consumer.getmany(
                *reading, timeout_ms=_POLL_MS, max_records=_MAX_RECORDS_PER_POLL
            )
            for tp in sorted(reading - stops.keys()):
                highwater = consumer.highwater(tp)
                if highwater is not None:
                    stops[tp] = max(ends.get(tp) or 0, highwater)
                    if on_stop is not None:
                        on_stop(tp, starts[tp], stops[tp])
            for tp, records in batches.items():
                stop = stops.get(tp, ends.get(tp) or 0)
                for record in records:
                    if record.offset >= stop:
                        break
                    await handle(record)
                    if self._failure is not None:
                        return
            finished = set()
            for tp in reading:
                if tp in stops and await consumer.position(tp) >= stops[tp]:
                    finished.add(tp)
            if batches or finished:
                last_progress = time.monotonic()
            elif time.monotonic() - last_progress > self.request.stall_timeout_s:
                names = ", ".join(f"{tp.topic}[{tp.partition}]" for tp in sorted(reading))
                raise ReplayError(
                    f"no progress reading {names} for {self.request.stall_timeout_s:g} s; "
                    "is the broker still up?"
                )
            if finished:
                consumer.pause(*finished)
                reading -= finished

    async def _read_settings(self, consumer: AIOKafkaConsumer) -> dict[str, bytes]:
        """The compacted settings topic as a dict: the last record per tenant wins."""
        tps = self._partitions(self.catalog.settings.name)
        latest: dict[str, bytes] = {}

        async def keep(record: ConsumerRecord) -> None:
            if record.key is None:
                return
            tenant = record.key.decode("utf-8", "replace")
            if record.value is None:
                latest.pop(tenant, None)  # a tombstone: the tenant's settings were deleted
            else:
                latest[tenant] = record.value

        if tps:
            consumer.assign(tps)
            starts = await self._bounded(consumer.beginning_offsets(tps), "beginning offsets")
            await self._read_ranges(consumer, starts, keep)
        return latest
