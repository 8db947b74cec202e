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
import re
import socket
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord

from models.delivery import Delivery
from models.records import OrderEventRecord
from models.secret_reference import SecretReferenceError, resolve_references
from models.settings import TenantSettings, WorkflowStep
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
from streams.core.resolution import resolve_endpoint, step_in_scope
from streams.core.workflow import Output, OutputTooLarge, Source, WorkflowOptions, run_workflow
from streams.http.egress import EgressPolicy
from streams.http.webhook_client import WebhookClient
from streams.ops.redaction import SECRETS, mask_url
from streams.ops.secret_store import SecretStore
from streams.replay.failed import FailedEvents
from streams.replay.report import Progress, ReplayRequest, ReplayResult, ReplayStats, TenantPlan
from streams.replay.window import format_time, to_ms
from streams.worker.lanes import Job, KeyedLanes
from streams.worker.tenant_settings import SettingsCache

T = TypeVar("T")
REPLAY_HEADER = "returnhook-replay-id"
_FETCH_MAX_WAIT_MS = 200  # the embedded broker holds every fetch for its full max wait
_POLL_MS = 500
_MAX_RECORDS_PER_POLL = 500
_MAX_REQUEST_BYTES = 6 * 1024 * 1024


class ReplayError(Exception):
    """A replay that cannot start or could not finish; the message is one line for the CLI."""


# --- the engine ---------------------------------------------------------------------------------


class Replay:
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
            raise ReplayError(f"cannot reach Kafka at {bootstrap}: {_one_line(exc)}") from None
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
                f"asking {self.request.bootstrap} for {what}: {_one_line(exc)}"
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

    async def _plan_record(self, record: ConsumerRecord) -> None:
        decoded = self._classify(record)
        if isinstance(decoded, Rejected):
            self.stats.dead_letters += 1
            self.stats.dead_letters_by_tenant["(unreadable)"] += 1
        elif isinstance(decoded, Accepted):
            self._plan_event(decoded)
        self._skip()

    def _plan_event(self, accepted: Accepted) -> None:
        tenant = accepted.event.tenant_id
        plan = self.plan.get(tenant)
        if plan is None:
            plan = self.plan[tenant] = TenantPlan(tenant)
        plan.events += 1
        plan.orders[accepted.order_id] += 1
        self.stats.replayed += 1
        settings = self._settings_for(tenant)
        if isinstance(settings, Rejected):
            plan.problem = f"{settings.error}: its events would be dead-lettered"
            self.stats.reasons[(tenant, settings.error)] += 1
            self.stats.dead_letters += 1
            self.stats.dead_letters_by_tenant[tenant] += 1
            return
        for index, step in enumerate(settings.return_workflow):
            if not step.is_webhook_return_step or not step.active:
                continue
            if not step_in_scope(step, accepted.order_view):
                continue
            target = self._target(step, settings, accepted)
            plan.targets[(index, step.name, target)] += 1

    def _target(self, step: WorkflowStep, settings: TenantSettings, accepted: Accepted) -> str:
        endpoint = resolve_endpoint(step, settings.connectors, accepted.order_view)
        if endpoint is None:
            return "no endpoint: connector not found (outcome Error, no call)"
        try:
            url = resolve_references(endpoint.url, settings.tenant_id, self._secrets)
        except SecretReferenceError as exc:
            return f"{mask_url(endpoint.url)} (would not be sent: {exc})"
        refused = egress_refusal(EgressPolicy(self.request.config.egress_allow), url)
        if refused:
            return f"{mask_url(url)} (would not be sent: {refused})"
        return mask_url(url)

    # -- the real thing -------------------------------------------------------------------------

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
                    f"cannot start a producer on {self.request.bootstrap}: {_one_line(exc)}"
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
                f"{self.stats.total} records: {_one_line(self._failure)}"
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


_USERINFO = re.compile(r"(://)[^/\s@]+@")


def egress_refusal(policy: EgressPolicy, url: str) -> str | None:
    """Why the worker's egress policy would refuse ``url`` (the dry run resolves the name once)."""
    host = urlsplit(url).hostname
    if not host:
        return None
    if policy.host_allowed(host):
        return None
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return None  # unresolvable now: the call would fail with its own reason
    for address in sorted(addresses):
        reason = policy.refusal(host, str(address))
        if reason:
            return reason
    return None


def _one_line(exc: BaseException) -> str:
    """An exception as one line for the CLI, without user:password@ of any URL in it."""
    name = type(exc).__name__
    text = _USERINFO.sub(r"\1***@", " ".join(str(exc).split()))
    if not text:
        return name
    return text if text.startswith(name) else f"{name}: {text}"


async def run_replay(
    request: ReplayRequest, progress: Progress | None = None, on_start: Progress | None = None
) -> ReplayResult:
    return await Replay(request, progress, on_start).run()
