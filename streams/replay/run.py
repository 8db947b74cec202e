"""``returnhook replay``: run the return step again for a time window of the input topic.

Operators replay when a tenant's endpoint was down or mis-configured. The replay reads the window
with plain aiokafka and *no consumer group*: partitions are assigned by hand, nothing is
committed, so the live workers' group offsets never move. Each event goes through the same step
logic as in the worker (``decode`` → tenant settings → ``run_workflow``, per-order sequencing in
``KeyedLanes``, the ``WebhookClient``'s retries), with ``WorkflowOptions(replay_id=…)``: delivery
ids, record ids and the ``Idempotency-Key`` are derived from (delivery id, replay id), and every
record carries ``replayId`` plus the Kafka header ``returnhook-replay-id``.

Where the window starts and ends:

- start: per partition, ListOffsets by time (``offsets_for_times``) at ``--from``. None (Kafka)
  or timestamp -1 (the embedded broker) means the partition has nothing at or after that time.
- stop: where each partition ended when the replay started: ``max(end_offsets, highwater of the
  first fetch)``. Real Kafka answers end offsets correctly; the embedded broker answers too low
  after batched writes, and the fetch highwater is right on both, so the maximum cannot cut the
  replay short on either.
- record filter: ``from <= record timestamp < to``. ListOffsets only finds where to start; the
  window itself is decided on each record's own timestamp.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Mapping
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord

from models.delivery import Delivery
from models.records import OrderEventRecord
from models.settings import TenantSettings
from streams.core.dead_letters import dead_letter_record, encode_dead_letter
from streams.core.decoder import Accepted, Ignored, Rejected, decode
from streams.core.identity import source_event_id
from streams.core.record_size import (
    headers_overhead,
    output_key,
    record_limit,
    value_budget,
)
from streams.core.request import WebhookRequest
from streams.core.workflow import Output, OutputTooLarge, Source, WorkflowOptions, run_workflow
from streams.http.egress import EgressPolicy
from streams.http.webhook_client import WebhookClient
from streams.ops.redaction import SECRETS
from streams.ops.secret_store import SecretStore
from streams.replay.dry_run import DryRunPlanner
from streams.replay.reading import WindowReader
from streams.replay.report import (
    Progress,
    ReplayError,
    ReplayRequest,
    ReplayResult,
    ReplayStats,
    TenantPlan,
    one_line,
)
from streams.replay.window import to_ms
from streams.worker.lanes import Job, KeyedLanes
from streams.worker.tenant_settings import SettingsCache

T = TypeVar("T")
REPLAY_HEADER = "returnhook-replay-id"
_FETCH_MAX_WAIT_MS = 200  # the embedded broker holds every fetch for its full max wait
_POLL_MS = 500
_MAX_RECORDS_PER_POLL = 500
_MAX_REQUEST_BYTES = 6 * 1024 * 1024


# --- the engine ---------------------------------------------------------------------------------


class Replay(WindowReader, DryRunPlanner):
    """One replay run: ``await Replay(request, progress).run()``."""

    def __init__(
        self,
        request: ReplayRequest,
        progress: Progress | None = None,
        on_start: Progress | None = None,
    ) -> None:
        """``on_start`` is called once the window's start offsets are known, before any work."""
        self.request = request
        self._on_start = on_start
        self.catalog = request.catalog
        self.stats = ReplayStats()
        self.plan: dict[str, TenantPlan] = {}
        self._progress = progress or (lambda stats: None)
        self._start_ms = to_ms(request.start)
        self._end_ms = to_ms(request.end) if request.end is not None else None
        self._settings: dict[str, bytes] = {}
        self._topics: dict[str, list[int]] = {}
        # The worker's rule: a tenant's ${NAME} reaches only its own secrets, never the env.
        self._secrets = SecretStore(request.env, request.config.secrets_dir, on_read=SECRETS.add)
        self._settings_cache = SettingsCache(self._secrets)
        self._headers = [(REPLAY_HEADER, request.replay_id.encode())]
        # The configured TLS/SASL/compression, on the bootstrap the command resolved.
        self._connection = request.config.connection_only().model_copy(
            update={"broker": request.bootstrap}
        )
        self._producer: AIOKafkaProducer | None = None
        self._client: WebhookClient | None = None
        self._lanes: KeyedLanes | None = None
        self._options: WorkflowOptions | None = None
        self._outstanding = 0
        self._idle = asyncio.Event()
        self._failed = asyncio.Event()
        self._failure: BaseException | None = None
        self._failed_sources: frozenset[tuple[str, str]] = frozenset()

    async def run(self) -> ReplayResult:
        started = time.monotonic()
        request = self.request
        consumer = AIOKafkaConsumer(
            **self._connection.aiokafka_options(),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            client_id=f"returnhook-{request.replay_id}",
            request_timeout_ms=max(5000, int(request.connect_timeout_s * 1000)),
            fetch_max_wait_ms=_FETCH_MAX_WAIT_MS,
            max_partition_fetch_bytes=_MAX_REQUEST_BYTES,
        )
        try:
            self._topics = await self._connect(consumer)
            self._settings = await self._read_settings(consumer)
            starts = await self._start_offsets(consumer)
            if request.failed_only:
                self._failed_sources = await self._read_failed(consumer)
                self.stats.failed_found = len(self._failed_sources)
            if self._on_start is not None:
                self._on_start(self.stats)
            if request.dry_run:
                await self._read_ranges(consumer, starts, self._plan_record, self._on_stop)
            else:
                await self._replay(consumer, starts)
        finally:
            await consumer.stop()
        if self.stats.in_window == 0:
            raise ReplayError(f"no records on {self.catalog.input.name} {self._window_text()}")
        return ReplayResult(
            replay_id=request.replay_id,
            dry_run=request.dry_run,
            stats=self.stats,
            plan=self.plan,
            elapsed_s=time.monotonic() - started,
            unknown_tenants=sorted(t for t in request.tenants if t not in self._settings),
        )

    # -- connecting and finding the window -----------------------------------------------------

    def _settings_for(self, tenant: str) -> TenantSettings | Rejected:
        """As the worker's, from the records read at the start."""
        raw = self._settings.get(tenant)
        return self._settings_cache.lookup(tenant, raw, self.catalog.settings.name)

    def _on_stop(self, tp: TopicPartition, start: int, stop: int) -> None:
        self.stats.ranges[tp.partition] = (start, stop)
        self.stats.total += max(0, stop - start)
        self._progress(self.stats)

    def _classify(self, record: ConsumerRecord) -> Accepted | Rejected | None:
        """Counts the record as read; returns what to run, or None when it is skipped."""
        stats = self.stats
        stats.read += 1
        timestamp = record.timestamp
        if timestamp < self._start_ms or (self._end_ms is not None and timestamp >= self._end_ms):
            stats.outside_window += 1
            return None
        stats.in_window += 1
        decoded = decode(
            record.value, max_bytes=self.request.config.max_record_bytes, headers=record.headers
        )
        if isinstance(decoded, Ignored):
            stats.not_returns += 1
            return None
        if isinstance(decoded, Rejected):
            if self.request.filtering or self.request.failed_only:
                stats.unattributed += 1
                return None
            return decoded
        if not self._wanted(decoded):
            stats.filtered += 1
            return None
        if self.request.failed_only:
            source = source_event_id(
                decoded.event.event_id, record.topic, record.partition, record.offset
            )
            if (decoded.event.tenant_id, source) not in self._failed_sources:
                stats.not_failed += 1
                return None
        return decoded

    def _wanted(self, accepted: Accepted) -> bool:
        request = self.request
        if request.tenants and accepted.event.tenant_id not in request.tenants:
            return False
        return not request.orders or accepted.order_id in request.orders

    def _skip(self) -> None:
        self.stats.done += 1
        self._progress(self.stats)

    # -- dry run ------------------------------------------------------------------------------

    async def _replay(
        self, consumer: AIOKafkaConsumer, starts: Mapping[TopicPartition, int]
    ) -> None:
        config = self.request.config
        producer = AIOKafkaProducer(
            **self._connection.producer_options(),
            acks="all",
            enable_idempotence=False,  # not supported by the embedded broker; the worker's too
            client_id=f"returnhook-{self.request.replay_id}",
            request_timeout_ms=30000,
            max_request_size=_MAX_REQUEST_BYTES,
        )
        client = WebhookClient(
            retry_delays=config.retry_delays,
            max_response_bytes=config.max_response_bytes,
            max_in_flight=config.max_in_flight,
            max_in_flight_per_host=config.max_in_flight_per_host,
            egress=EgressPolicy(config.egress_allow),  # the same guard as the worker's
        )
        catalog = self.catalog
        extra = headers_overhead(self._headers)
        self._options = WorkflowOptions(
            secrets=self._secrets,
            max_attempts=client.max_attempts,
            user_agent=config.user_agent,
            replay_id=self.request.replay_id,
            attempt_log=config.attempt_log,
            max_patch_record_bytes=record_limit(_MAX_REQUEST_BYTES, catalog.patches.configs)
            - extra,
            max_event_record_bytes=record_limit(_MAX_REQUEST_BYTES, catalog.events.configs) - extra,
        )
        lanes = KeyedLanes(window=config.max_uncommitted, ack=self._ack, on_error=self._on_error)
        self._producer, self._client, self._lanes = producer, client, lanes
        try:
            try:
                async with asyncio.timeout(self.request.connect_timeout_s):
                    await producer.start()
            except (TimeoutError, KafkaError, OSError) as exc:
                raise ReplayError(
                    f"cannot start a producer on {self.request.bootstrap}: {one_line(exc)}"
                ) from None
            await client.start()
            await self._run_lanes(consumer, starts, lanes)
        finally:
            await client.close()
            await producer.stop()

    async def _run_lanes(
        self,
        consumer: AIOKafkaConsumer,
        starts: Mapping[TopicPartition, int],
        lanes: KeyedLanes,
    ) -> None:
        """Reads and submits until every job is done, or stops at the first failed job.

        The reader runs as a task: a failed job is never acknowledged, so a full window would
        keep ``submit`` waiting forever; the failure cancels the reader instead.
        """

        async def read_all() -> None:
            await self._read_ranges(consumer, starts, self._submit, self._on_stop)
            await self._idle.wait()

        self._idle.set()
        reader = asyncio.create_task(read_all())
        failed = asyncio.create_task(self._failed.wait())
        try:
            await asyncio.wait({reader, failed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (reader, failed):
                task.cancel()
            await asyncio.wait({reader, failed})  # never raises: the reader's error is kept
            # Normally nothing is left; after a failure or Ctrl-C, running calls get a moment.
            await lanes.drain(5.0 if self._failure is not None else 1.0)
        if self._failure is not None:
            raise ReplayError(
                f"replay {self.request.replay_id} stopped after {self.stats.done} of "
                f"{self.stats.total} records: {one_line(self._failure)}"
            )
        if not reader.cancelled():
            reader.result()  # the reader's own error (a stall), if any

    async def _submit(self, record: ConsumerRecord) -> None:
        decoded = self._classify(record)
        assert self._lanes is not None
        if decoded is None:
            self._skip()
            return
        if isinstance(decoded, Rejected):
            key: Any = ("dead-letter", record.partition, record.offset)
            work = functools.partial(self._dead_letter, record, decoded, "(unreadable)")
        else:
            key = (decoded.event.tenant_id, decoded.order_id)
            work = functools.partial(self._process, record, decoded)
        self._outstanding += 1
        self._idle.clear()
        job = Job(partition=record.partition, offset=record.offset, key=key, work=work, token=None)
        await self._lanes.submit(job)
        self._progress(self.stats)

    async def _ack(self, token: Any) -> None:
        self._outstanding -= 1
        self.stats.done += 1
        if self._outstanding == 0:
            self._idle.set()
        self._progress(self.stats)

    async def _on_error(self, job: Job, exc: BaseException) -> None:
        self._failure = exc
        self._failed.set()

    async def _deliver(self, request: WebhookRequest) -> Delivery:
        assert self._client is not None
        delivery = await self._client.deliver(request)
        self.stats.calls += 1
        if not delivery.ok:
            self.stats.failed_calls += 1
        self._progress(self.stats)
        return delivery

    async def _process(self, record: ConsumerRecord, accepted: Accepted) -> None:
        tenant = accepted.event.tenant_id
        settings = self._settings_for(tenant)
        if isinstance(settings, Rejected):
            await self._dead_letter(record, settings, tenant)
            return
        source = Source(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            timestamp_ms=record.timestamp,
        )
        assert self._options is not None
        try:
            outputs = await run_workflow(accepted, settings, source, self._deliver, self._options)
        except OutputTooLarge as exc:
            rejected = Rejected(reason="output_too_large", error=str(exc))
            await self._dead_letter(record, rejected, tenant)
            return
        await self._produce(outputs)
        self.stats.replayed += 1

    async def _produce(self, outputs: list[Output]) -> None:
        """Sends every record, then waits until the broker acknowledged each of them."""
        assert self._producer is not None
        pending = []
        topics = {
            "patches": self.catalog.patches.name,
            "events": self.catalog.events.name,
            "attempts": self.catalog.attempts.name,
        }
        for output in outputs:
            topic = topics[output.role]
            value = output.value
            pending.append(
                await self._producer.send(
                    topic,
                    value=value,
                    key=output.wire_key,
                    headers=self._headers + output.headers,
                )
            )
        for future in pending:
            await future
        for output in outputs:
            record = output.record
            if isinstance(record, OrderEventRecord):
                self.stats.outcomes[(record.tenant_id, record.action_status)] += 1
                if record.action_status != "Success" and record.error_reason:
                    self.stats.reasons[(record.tenant_id, record.error_reason)] += 1
            elif output.role == "patches":
                self.stats.patches += 1

    async def _dead_letter(self, record: ConsumerRecord, rejected: Rejected, tenant: str) -> None:
        """As the worker writes it, with the replay header on the dead-letter record."""
        assert self._producer is not None
        key = output_key(record.key)
        limit = record_limit(_MAX_REQUEST_BYTES, self.catalog.dead_letters.configs)
        dead = dead_letter_record(
            rejected,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            value=record.value,
            headers=list(record.headers or []),
            max_bytes=value_budget(limit, key, self._headers),
        )
        await (
            await self._producer.send(
                self.catalog.dead_letters.name,
                value=encode_dead_letter(dead),
                key=key,
                headers=self._headers,
            )
        )
        self.stats.dead_letters += 1
        self.stats.dead_letters_by_tenant[tenant] += 1
        self.stats.reasons[(tenant, f"dead letter {rejected.reason}: {rejected.error}")] += 1


async def run_replay(
    request: ReplayRequest, progress: Progress | None = None, on_start: Progress | None = None
) -> ReplayResult:
    return await Replay(request, progress, on_start).run()
