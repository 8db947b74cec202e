"""The faust app: the input agent, the tenant-settings GlobalTable, the output topics.

This is the imperative shell. It decodes, looks up settings, hands the event to
``streams.core.workflow`` and produces what comes back. An input offset is acknowledged only after
every output record for it is acknowledged by the broker; an unexpected exception stops the
worker without acknowledging, so the event is redone by whoever owns the partition next.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import faust
import mode
from faust.sensors.prometheus import setup_prometheus_sensors
from faust.types import StreamT
from prometheus_client import CollectorRegistry

from models.delivery import Delivery
from models.records import OrderEventRecord
from models.settings import TenantSettings
from streams.core.dead_letters import dead_letter_record, encode_dead_letter
from streams.core.decoder import Accepted, Ignored, Rejected, decode
from streams.core.record_size import output_key, record_limit, value_budget
from streams.core.request import WebhookRequest
from streams.core.workflow import Output, OutputTooLarge, Source, WorkflowOptions, run_workflow
from streams.http.egress import EgressPolicy
from streams.http.webhook_client import WebhookClient
from streams.kafka.progress_reader import ProgressReader
from streams.kafka.topics import TopicCatalog, load_topics
from streams.ops.config import WorkerConfig
from streams.ops.metrics import Metrics
from streams.ops.redaction import SECRETS
from streams.ops.secret_store import SecretStore
from streams.worker.faust_parts import (
    ClientService,
    FaustApp,
    ProgressService,
    SettingsTable,
    broker_urls,
    raw_topic,
)
from streams.worker.input_record import InputRecord
from streams.worker.key_partitioner import KeyPartitioner
from streams.worker.lanes import Job, KeyedLanes
from streams.worker.output_batches import OutputBatches
from streams.worker.progress import ProgressBook
from streams.worker.seek_first_recovery import SeekFirstTableManager
from streams.worker.tenant_settings import SettingsCache, await_settings

log = logging.getLogger("returnhook")

UNFINISHED_PER_CALL_SLOT = 2
PRODUCER_BATCH_BYTES = 256 * 1024


class Returnhook:
    """One worker's app. Built by a factory so tests and the CLI can run several side by side."""

    def __init__(
        self,
        config: WorkerConfig,
        catalog: TopicCatalog | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        if not config.broker:
            raise ValueError("the worker needs a broker (--broker or RETURNHOOK_BROKER)")
        self.config = config
        self.catalog = catalog or load_topics(config.topics_file)
        self.env = dict(os.environ if env is None else env)
        data_dir = config.data_dir or Path(tempfile.gettempdir()) / "returnhook" / config.app_id
        data_dir.mkdir(parents=True, exist_ok=True)
        self.app = FaustApp(
            config.app_id,
            broker=broker_urls(config.broker),
            store="memory://",
            # Not the current directory: nothing is stored there (memory store), and a worker
            # started from a checkout must not litter it.
            datadir=str(data_dir),
            processing_guarantee="at_least_once",
            consumer_auto_offset_reset="earliest",
            broker_commit_interval=config.commit_interval_s,
            broker_session_timeout=config.session_timeout_s,
            broker_heartbeat_interval=config.heartbeat_interval_s,
            broker_rebalance_timeout=config.rebalance_timeout_s,
            broker_request_timeout=30.0,
            producer_request_timeout=30.0,
            producer_linger_ms=config.producer_linger_ms,
            # faust's 16 KB batches fill after ~25 outputs and every send after that waits for a
            # drain (a task per waiting send); 256 KB batches carry a whole fetch's outputs.
            producer_max_batch_size=PRODUCER_BATCH_BYTES,
            producer_partitioner=KeyPartitioner(),
            topic_disable_leader=True,
            topic_allow_declare=False,
            web_enabled=config.web_enabled,
            web_port=config.web_port,
            web_bind=config.web_host,
            web_in_thread=False,
            TableManager=SeekFirstTableManager,
            # TLS, SASL and output compression: the same connection as every other client.
            **config.faust_options(),
        )
        catalog = self.catalog
        self.input_topic = raw_topic(self.app, catalog.input.name)
        self.patches_topic = raw_topic(self.app, catalog.patches.name)
        self.events_topic = raw_topic(self.app, catalog.events.name)
        self.dead_letters_topic = raw_topic(self.app, catalog.dead_letters.name)
        self._output_topics = {
            "patches": catalog.patches.name,
            "events": catalog.events.name,
            "attempts": catalog.attempts.name,
        }
        settings_topic = raw_topic(self.app, catalog.settings.name, catalog.settings.partitions)
        self.settings_table = self.app.tables.add(
            SettingsTable(
                self.app,
                name="tenant_settings",
                changelog_topic=settings_topic,
                key_type=bytes,
                value_type=bytes,
                partitions=catalog.settings.partitions,
                is_global=True,
                # One record per batch: see notes/broker.md on end offsets after batches.
                recovery_buffer_size=1,
                standby_buffer_size=1,
                beacon=self.app.tables.beacon,
            )
        )
        # Tenants' ${NAME} references reach only their own namespace of these, never self.env.
        self.secrets = SecretStore(self.env, config.secrets_dir, on_read=SECRETS.add)
        self.settings_cache = SettingsCache(self.secrets)
        self.progress_reader = ProgressReader(
            config.connection_only(),
            catalog.progress.name,
            catalog.progress.partitions,
            key_prefix=f"{config.app_id}|".encode(),
        )
        self.progress = ProgressBook(
            group=config.app_id,
            lookup=self.progress_reader.get,
            send=self._send_progress,
            committed=self._committed_offset,
        )
        self.registry = CollectorRegistry()
        self.metrics = Metrics(self.registry, self.stats)
        self.client = WebhookClient(
            retry_delays=config.retry_delays,
            max_response_bytes=config.max_response_bytes,
            max_in_flight=config.max_in_flight,
            max_in_flight_per_host=config.max_in_flight_per_host,
            on_attempt=self.metrics.on_attempt,
            egress=EgressPolicy(config.egress_allow),
            park=lambda: self.lanes.parked(),
        )
        # Every record is measured against these before it is sent (streams/core/record_size).
        max_request = self.app.conf.producer_max_request_size
        self.dead_letter_limit = record_limit(max_request, catalog.dead_letters.configs)
        self.options = WorkflowOptions(
            secrets=self.secrets,
            max_attempts=self.client.max_attempts,
            user_agent=config.user_agent,
            attempt_log=config.attempt_log,
            max_patch_record_bytes=record_limit(max_request, catalog.patches.configs),
            max_event_record_bytes=record_limit(max_request, catalog.events.configs),
        )
        self.lanes = KeyedLanes(
            window=config.max_uncommitted,
            max_bytes=config.max_uncommitted_bytes,
            # Events read ahead of the calls: enough to keep every call slot busy, few enough
            # that a burst waits in Kafka rather than decoded in memory.
            max_unfinished=UNFINISHED_PER_CALL_SLOT * config.max_in_flight,
            ack=self._ack,
            on_error=self._crash,
            prior=self.progress.prior,
        )
        self.output_batches = OutputBatches(lambda: self.app.producer._ensure_producer())
        self._drain_task: asyncio.Future[None] | None = None
        self._commit_task: asyncio.Future[None] | None = None
        self._stream: Any = None
        # An exception in the agent itself must stop the worker, not restart the agent past
        # the event (faust's default supervisor does that, and then commits past it).
        self.app.agent(
            self.input_topic,
            name="returnhook.process",
            supervisor_strategy=mode.CrashingSupervisor,
        )(self._agent)
        self.app.input_topic_name = catalog.input.name
        self.app.on_input_batch = self._admit_batch
        self.app.before_revoke = self._on_rebalance_start
        self.app.before_stop = self._before_stop
        self.app.on_input_sought = self._on_input_sought
        self.app.before_input = self._before_input
        self.app.on_partitions_assigned.connect(self._on_partitions_assigned)
        self._assigned = False
        if config.web_enabled:
            self._add_web_views()
        self.app.add_dependency(ClientService(self.client))
        self.app.add_dependency(
            ProgressService(
                self.progress_reader, self.progress, config.commit_interval_s, self.lanes.views
            )
        )

    def _add_web_views(self) -> None:
        setup_prometheus_sensors(self.app, registry=self.registry, name_prefix="faust")

        async def stats_view(view: Any, request: Any) -> Any:
            return view.json(self.stats())

        async def health_view(view: Any, request: Any) -> Any:
            """Live: the process runs its event loop. Kubernetes livenessProbe."""
            return view.json({"status": "ok"})

        async def ready_view(view: Any, request: Any) -> Any:
            """Ready: partitions assigned and tenant settings recovered. readinessProbe."""
            ready, checks = self.readiness()
            return view.json({"ready": ready, **checks}, status=200 if ready else 503)

        self.app.page("/returnhook/stats/", name="returnhook_stats")(stats_view)
        self.app.page("/health", name="returnhook_health")(health_view)
        self.app.page("/ready", name="returnhook_ready")(ready_view)

    def readiness(self) -> tuple[bool, dict[str, bool]]:
        recovered = self.app.tables.recovery.completed.is_set()
        checks = {
            "partitionsAssigned": self._assigned,
            "settingsRecovered": recovered,
            "running": self.lanes.failed is None and not self.app.should_stop,
        }
        return all(checks.values()), checks

    # -- intake: decode, pick the lane, submit (the agent never awaits a webhook) -------------

    async def _agent(self, stream: StreamT) -> None:
        """Subscribes the input topic; its records arrive in batches (``_admit_batch``).

        Only a consumer other than BatchIntakeConsumer would deliver them here, one by one.
        """
        self._stream = stream.noack()
        async for event in self._stream.events():
            await self._admit_batch([event.message])

    async def _admit_batch(self, messages: list[Any]) -> None:
        """One fetch's input records, in order: decoded and handed to the lanes one by one."""
        for index, message in enumerate(messages):
            if self.lanes.failed is not None or self.app.should_stop:
                for rest in messages[index:]:
                    self._forget(rest)
                return
            if message.generation_id != self.app.consumer_generation_id:
                # Read before a rebalance: the partition was sought back to its committed offset
                # since, so its owner reads it again.
                self._forget(message)
                continue
            await self._admit(message)

    async def _admit(self, message: Any) -> None:
        """Hands the record to the lanes; a record they do not take is never acknowledged."""
        job = self._job_for(message)
        while not await self.lanes.submit(job):
            self._forget(message)
            if not self.lanes.paused or self.app.should_stop or self.lanes.failed is not None:
                return  # a repeat of an offset already taken, or the worker stops
            # A drain pauses the lanes. A record of the generation being drained is read again
            # by its partition's next owner; one of the next generation (the drain outlived the
            # rebalance) would not be delivered again: offer it once the lanes resume.
            await self.lanes.resumed()
            if message.generation_id != self.app.consumer_generation_id:
                return

    def _forget(self, message: Any) -> None:
        """Neither processed nor acknowledged: a redelivery, or refused while draining.

        faust tracks every message it hands out and, on shutdown or rebalance, waits without a
        limit for each to be acknowledged; this one never will be, so stop tracking it.
        """
        unacked = getattr(self.app.consumer, "_unacked_messages", None)
        if unacked is not None:
            unacked.discard(message)

    def _job_for(self, message: Any) -> Job:
        record = InputRecord.of(message)
        decoded = decode(
            record.value, max_bytes=self.config.max_record_bytes, headers=record.headers
        )
        key: Any
        if isinstance(decoded, Ignored):
            self.metrics.input_events.labels("ignored").inc()
            key, work = None, None
        elif isinstance(decoded, Rejected):
            key = ("dead-letter", message.partition, message.offset)
            work = functools.partial(self.dead_letter, record, decoded)
        else:
            key = (decoded.event.tenant_id, decoded.order_id)
            work = functools.partial(self._process, record, decoded)
        # faust keeps the message until it is acknowledged, which may be long
        # after the work is done: the slot keeps only what the ack needs, not the bytes.
        message.value = None
        return Job(
            partition=message.tp,
            offset=message.offset,
            key=key,
            work=work,
            token=message,
            size=record.size,
        )

    def _on_input_sought(self, offsets: Mapping[Any, int | None]) -> None:
        """Each input partition's ledger starts at the offset it was sought to."""
        started = {}
        for tp, offset in offsets.items():
            if tp.topic == self.input_topic.get_topic_name():
                self.lanes.start_partition(tp, offset)
                started[tp.partition] = offset
        log.info(
            "input partitions start at their committed offsets: %s", dict(sorted(started.items()))
        )

    async def _ack(self, message: Any) -> None:
        """Only ever called in offset order, for records whose outputs the broker acknowledged."""
        if message.generation_id != self.app.consumer_generation_id:
            self._forget(message)  # a stale generation: the partition's new owner redoes it
            return
        if self.app.consumer.ack(message):
            self.app.sensors.on_message_out(message.tp, message.offset, message)

    async def _crash(self, job: Job, exc: BaseException) -> None:
        log.error(
            "unexpected error on %s offset %d; stopping the worker without acknowledging it",
            job.partition,
            job.offset,
            exc_info=exc,
        )
        self.lanes.pause()  # take nothing more in; the failed offset holds its partition's acks
        await self.app.crash(exc)

    # -- rebalance and shutdown --------------------------------------------------------------

    def _on_rebalance_start(self) -> None:
        """Runs in faust's consumer thread, before faust waits for un-acked events."""
        self._assigned = False
        self.app.loop.call_soon_threadsafe(self._schedule_drain)

    def _schedule_drain(self) -> None:
        # faust drops the acknowledgements of revoked partitions before its own revoke commit
        # (Consumer.on_partitions_revoked), so what finished since the last periodic commit
        # would be redone by the next owner. Commit it first: this task is scheduled ahead of
        # faust's revoke handler on this loop. If it loses the race, nothing is lost, only redone.
        self._commit_task = asyncio.ensure_future(self._commit_before_revoke())
        if self._drain_task is None or self._drain_task.done():
            self._drain_task = asyncio.ensure_future(self._drain("rebalance"))

    async def _commit_before_revoke(self) -> None:
        try:
            await self.app.consumer.commit()
        except Exception as exc:  # the rebalance goes on; the next owner redoes the rest
            log.warning("commit before the rebalance failed: %s", exc)

    async def _on_partitions_assigned(self, app: faust.App, *args: Any, **kwargs: Any) -> None:
        self._assigned = True
        if self._drain_task is not None:
            await self._drain_task
        self.lanes.resume()

    async def _drain(self, why: str) -> None:
        """Bounded: faust waits for un-acked events with no limit, the group does not."""
        timeout = self.config.drain_timeout_s
        # The progress records are written once nothing runs any more and before the jobs are
        # forgotten: faust's revoke waits for that, so the group's next owners read them.
        dropped = await self.lanes.drain(timeout, before_clear=self._write_progress)
        self.progress.forget()
        for job in dropped:
            self._forget(job.token)
        if dropped:
            log.warning(
                "%s: %d accepted event(s) not finished within %.1f s were cancelled and left "
                "unacknowledged; the partitions' next owner redoes them",
                why,
                len(dropped),
                timeout,
            )

    async def _before_stop(self) -> None:
        await self._drain("shutdown")

    # -- progress beyond the commit point ----------------------------------------------------

    async def _before_input(self) -> None:
        """The previous owners' last progress records must be read before any input record."""
        timeout = self.config.rebalance_timeout_s
        if not await self.progress_reader.caught_up(timeout):
            log.warning(
                "the progress topic %s was not read to its end within %.1f s; finished events "
                "of newly assigned partitions may run again",
                self.catalog.progress.name,
                timeout,
            )

    async def _write_progress(self) -> None:
        written = await self.progress.write(self.lanes.views)
        log.info("progress: %d record(s) written before the partitions are released", written)

    async def _send_progress(self, key: bytes, value: bytes) -> None:
        """Its own awaited send: see streams/worker/progress.py on batches and end offsets."""
        name = self.catalog.progress.name
        await (await self.app.producer.send(name, key, value, None, None, None))

    def _committed_offset(self, tp: Any) -> int | None:
        committed = getattr(self.app.consumer, "_committed_offset", None)
        return committed.get(tp) if committed is not None else None

    async def _deliver(self, tp: Any, offset: int, request: WebhookRequest, **kw: Any) -> Delivery:
        """The client's deliver, telling the progress book when a retry starts waiting."""
        on_wait = functools.partial(self.progress.waiting, tp, offset, request.step_index)
        return await self.client.deliver(request, on_wait=on_wait, **kw)

    # -- the work of one event ---------------------------------------------------------------

    async def _process(self, record: InputRecord, accepted: Accepted) -> None:
        settings = await await_settings(
            functools.partial(self._settings_for, accepted), self.config.settings_grace_s
        )
        if isinstance(settings, Rejected):
            await self.dead_letter(record, settings)
            return
        source = Source(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            timestamp_ms=int(record.timestamp * 1000) if record.timestamp else None,
            received_at=record.received_at,
        )
        try:
            outputs = await run_workflow(
                accepted,
                settings,
                source,
                functools.partial(self._deliver, record.tp, record.offset),
                self.options,
                on_future_timestamp=self.metrics.future_timestamps.inc,
                resume=self.progress.retry_for(record.tp, record.offset),
            )
        except OutputTooLarge as exc:
            await self.dead_letter(record, Rejected(reason="output_too_large", error=str(exc)))
            return
        await self.produce(outputs)
        self.metrics.input_events.labels("processed").inc()

    def stats(self) -> dict[str, Any]:
        """For metrics and the debug view."""
        return {
            **self.lanes.stats(),
            "progress_records_written": self.progress.records_written,
            "calls_running": self.client.calls_running,
            "calls_running_by_host": dict(self.client.running),
        }

    def _settings_for(self, accepted: Accepted) -> TenantSettings | Rejected:
        tenant = accepted.event.tenant_id
        raw = self.settings_table.get(tenant.encode())
        return self.settings_cache.lookup(tenant, raw, self.catalog.settings.name)

    async def produce(self, outputs: list[Output]) -> None:
        """Sends every record, then waits for the broker to acknowledge each of them."""
        # Straight to aiokafka, a batch per partition for every event finishing in this loop
        # iteration (streams/worker/output_batches.py): no future or partition lookup per record.
        topics = self._output_topics
        await self.output_batches.send(
            [
                (topics[output.role], output.wire_key, output.value, output.headers or None)
                for output in outputs
            ]
        )
        for output in outputs:
            if isinstance(output.record, OrderEventRecord):
                self.metrics.outcomes.labels(
                    output.record.tenant_id, output.record.action_status
                ).inc()
                _log_outcome(output.record)

    async def dead_letter(self, source: InputRecord, rejected: Rejected) -> None:
        """Writes the dead letter, cut to what the dead-letter topic takes (never refused)."""
        key = output_key(source.key)
        record = dead_letter_record(
            rejected,
            topic=source.topic,
            partition=source.partition,
            offset=source.offset,
            key=source.key,
            value=source.value,
            headers=source.headers,
            max_bytes=value_budget(self.dead_letter_limit, key),
        )
        log.warning(
            "dead letter %s at %s[%d]@%d (%d bytes%s): %s",
            rejected.reason,
            source.topic,
            source.partition,
            source.offset,
            record.value_size,
            f", cut: {', '.join(record.truncated)}" if record.truncated else "",
            rejected.error[:1000],
        )
        value = encode_dead_letter(record)
        await (await self.dead_letters_topic.send(key=key, value=value))
        self.metrics.input_events.labels("dead_lettered").inc()
        self.metrics.dead_letters.labels(rejected.reason).inc()


def _log_outcome(record: OrderEventRecord) -> None:
    if not log.isEnabledFor(logging.INFO):
        return
    fields = {
        "tenant": record.tenant_id,
        "order": record.order_id,
        "step": record.step.index,
        "status": record.action_status,
        "attempts": record.attempts,
        "http": record.http_status,
        "duration_ms": record.duration_ms,
        "continue": record.continue_workflow,
    }
    text = " ".join(f"{k}={v}" for k, v in fields.items())
    reason = f" reason={record.error_reason!r}" if record.error_reason else ""
    log.info("outcome %s%s", text, reason, extra={**fields, "reason": record.error_reason})
