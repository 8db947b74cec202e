"""``returnhook demo``: the whole pipeline on one machine, with nothing installed but this package.

It starts the embedded broker, creates the topics, serves the demo webhook receiver, publishes
the ``demo-shop`` tenant's settings, starts one worker as a subprocess, produces a handful of
return events (``streams.demo.data``), reads what comes out on ``order-patches`` and
``order-events``, prints it, and stops everything again, on Ctrl-C too.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from rich.markup import escape

from streams.demo import data as demo_data
from streams.demo.data import EXPECTED, IGNORED_ORDER_ID
from streams.demo.report import (
    Outcomes,
    console,
    print_dead_letters,
    print_events,
    print_patches,
    summary,
)
from streams.demo.stages import holding_output, quiet_kafka_clients, receiver_log_lines, say, stage
from streams.kafka.embedded_broker import EmbeddedBroker, EmbeddedBrokerError
from streams.kafka.settings_file import publish_settings
from streams.kafka.topic_admin import apply_topics
from streams.kafka.topics import TopicCatalog, TopicsFileError, load_topics, resolve_topics_path
from streams.processes.worker_log import worker_ready
from streams.processes.worker_process import WorkerProcess, returnhook_command

#: Short waits so the flaky scenario recovers in a second; production default is 1, 5, 15 s.
RETRY_DELAYS = "0.5,1,2"
#: The demo receiver listens on loopback, which the worker's egress policy refuses by default.
EGRESS_ALLOW = "127.0.0.1/32"
_WORKER_STOP_TIMEOUT = 15.0
_INTERRUPTED_STOP_TIMEOUT = 3.0  # Ctrl-C also stopped the broker: the worker cannot commit
_FETCH_MAX_WAIT_MS = 100  # the embedded broker holds every fetch for its full max wait


class DemoFailed(Exception):
    """A stage could not be completed; the message says which and why."""


@dataclass
class Demo:
    """Everything the demo started, so that it can all be stopped from anywhere."""

    timeout: float
    started: float = field(default_factory=time.monotonic)
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="returnhook-demo-")))
    broker: EmbeddedBroker | None = None
    worker: WorkerProcess | None = None
    receiver: web.AppRunner | None = None
    keep_logs: bool = False

    @property
    def deadline(self) -> float:
        return self.started + self.timeout

    @property
    def worker_log(self) -> Path:
        return self.workdir / "worker.log"

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def worker_log_tail(self, lines: int = 25) -> str:
        if self.worker is None and not self.worker_log.exists():
            return "(no worker log)"
        return WorkerProcess("worker", [], log_path=self.worker_log).log_tail(lines)

    def stop_worker(self, timeout: float = _WORKER_STOP_TIMEOUT) -> int | None:
        """SIGTERM (faust shuts down cleanly and commits), SIGKILL if it hangs; idempotent."""
        worker, self.worker = self.worker, None
        return None if worker is None else worker.stop(timeout)

    def stop_broker(self) -> None:
        broker, self.broker = self.broker, None
        if broker is not None:
            broker.stop()

    def stop_processes(self, worker_timeout: float = _WORKER_STOP_TIMEOUT) -> None:
        """The synchronous last line of defence: nothing this demo started outlives it."""
        self.stop_worker(worker_timeout)
        self.stop_broker()

    def cleanup_files(self) -> None:
        """Logs are kept only after a failure or Ctrl-C, and only when there are some."""
        if not self.keep_logs or not any(self.workdir.iterdir()):
            shutil.rmtree(self.workdir, ignore_errors=True)


def run_demo(timeout: float = 90.0) -> int:
    """Runs the demo; 0 when every scenario produced what it should, 1 otherwise, 130 on Ctrl-C."""
    demo = Demo(timeout=timeout)
    console.print(
        "[bold]returnhook demo[/]: embedded Kafka broker, demo webhook receiver, one worker, "
        f"{len(EXPECTED) + 1} order-status-changed events (gives up after {timeout:g} s)"
    )
    try:
        with quiet_kafka_clients():
            code = asyncio.run(_run(demo))
    except KeyboardInterrupt:
        demo.keep_logs = True
        demo.stop_processes(worker_timeout=_INTERRUPTED_STOP_TIMEOUT)
        console.print(f"[yellow]interrupted[/]: everything stopped; logs kept in {demo.workdir}")
        return 130
    finally:
        demo.stop_processes()
        demo.cleanup_files()
    return code


async def _run(demo: Demo) -> int:
    try:
        outcomes = await _pipeline(demo)
    except DemoFailed as exc:
        demo.keep_logs = True
        console.print(f"[red]demo failed:[/] {escape(str(exc))}")
        await _shutdown(demo)
        return 1
    except asyncio.CancelledError:
        # Ctrl-C: asyncio.run cancels us and raises KeyboardInterrupt once we are done.
        demo.keep_logs = True
        console.print("[yellow]Ctrl-C[/]: stopping everything…")
        await _shutdown(demo, worker_timeout=_INTERRUPTED_STOP_TIMEOUT)
        raise
    except BaseException:
        demo.keep_logs = True
        await _shutdown(demo, quiet=True)
        raise

    problems = {e.order_id: outcomes.problems(e) for e in EXPECTED}
    problems = {order: found for order, found in problems.items() if found}
    if outcomes.produced_for(IGNORED_ORDER_ID):
        problems[IGNORED_ORDER_ID] = ["a non-return event produced output"]
    if outcomes.events:
        print_events(outcomes)
    if outcomes.patches:
        print_patches(outcomes)
    if outcomes.dead_letters:
        print_dead_letters(outcomes)
    console.print(summary(outcomes, problems, demo.elapsed()))
    if problems:
        demo.keep_logs = True
        for order, found in problems.items():
            console.print(f"[red]  {order}:[/] {escape('; '.join(found))}")
        console.print(f"[dim]worker log ({demo.worker_log}), last lines:[/]")
        console.print(escape(demo.worker_log_tail()), markup=True, style="dim")
    await _shutdown(demo)
    return 1 if problems else 0


async def _pipeline(demo: Demo) -> Outcomes:
    topics_path = resolve_topics_path()
    try:
        catalog = load_topics(topics_path)
    except TopicsFileError as exc:
        raise DemoFailed(str(exc)) from None

    with stage("starting embedded Kafka broker") as done:
        broker = EmbeddedBroker(log_path=demo.workdir / "broker.log")
        try:
            # From this (the main) thread: the broker then dies with us even if we are killed.
            demo.broker = broker.start()
        except EmbeddedBrokerError as exc:
            raise DemoFailed(str(exc)) from None
        done(f"{broker.bootstrap}, pid {broker.pid}")
    bootstrap = broker.bootstrap

    with stage(f"creating topics from {topics_path.name}") as done:
        reports = await _within(demo, apply_topics(bootstrap, catalog), "creating topics")
        done(", ".join(f"{r.name} ×{catalog.by_role()[r.role].partitions}" for r in reports))

    with stage("starting demo webhook receiver") as done:
        demo.receiver = await _serve_receiver()
        url = _receiver_url(demo.receiver)
        done(f"{url}/returns/{{accept,enrich,reject,flaky,missing}}")

    settings = demo_data.tenant_settings(url)
    with stage(f"publishing settings of tenant {settings.tenant_id}") as done:
        publish = publish_settings(bootstrap, catalog.settings.name, [settings])
        await _within(demo, publish, "publishing settings")
        done(
            f"{len(settings.connectors)} connectors with bearer token ${{{demo_data.TOKEN_NAME}}} "
            f"(from {demo_data.TOKEN_ENV}), "
            f"{len(settings.return_workflow)} return-workflow steps → {catalog.settings.name}"
        )

    app_id = f"returnhook-demo-{secrets.token_hex(4)}"
    with stage("starting worker") as done:
        spawned = time.monotonic()
        demo.worker = _spawn_worker(demo, bootstrap, topics_path, app_id)
        await _wait_until_ready(demo)
        done(
            f"pid {demo.worker.pid}, group {app_id}, ready in {time.monotonic() - spawned:.1f} s; "
            f"retry delays {RETRY_DELAYS.replace(',', ', ')} s instead of 1, 5, 15 s; "
            f"egress allowed to {EGRESS_ALLOW} for the demo receiver"
        )

    consumer = await _within(demo, _start_reader(bootstrap, catalog), "starting the reader")
    try:
        values = demo_data.events()
        with receiver_log_lines():
            with holding_output():
                with stage(f"producing {len(values)} events to {catalog.input.name}") as done:
                    produce = _produce(bootstrap, catalog.input.name, values)
                    await _within(demo, produce, "producing")
                    done(", ".join(f"{v['orderId']} {v['status']}" for v in values))
                console.print(
                    f"waiting for {catalog.events.name} and {catalog.patches.name} "
                    f"(at most {max(demo.remaining(), 0):.0f} s more)…"
                )
            waited = time.monotonic()
            outcomes = await _collect(demo, consumer, catalog)
        arrived = sum(len(v) for v in outcomes.events.values())
        patches = sum(len(v) for v in outcomes.patches.values())
        counts = f"{arrived} order-events, {patches} order-patches"
        missing = [f"{e.order_id} ({e.scenario})" for e in EXPECTED if not outcomes.arrived(e)]
        if missing:
            console.print(
                f"… [red]timed out[/] after {demo.timeout:g} s ({counts}); "
                f"still missing: {', '.join(missing)}"
            )
        else:
            console.print(f"… [green]ok[/] ({counts} in {time.monotonic() - waited:.1f} s)")
    finally:
        await _close_quietly(consumer.stop())
    return outcomes


async def _serve_receiver() -> web.AppRunner:
    from streams.demo.receiver import serve

    return await serve("127.0.0.1", 0)


def _receiver_url(runner: web.AppRunner) -> str:
    host, port = runner.addresses[0][:2]
    return f"http://{host}:{port}"


async def _within(demo: Demo, awaitable: Any, what: str) -> Any:
    try:
        async with asyncio.timeout(max(demo.remaining(), 1.0)):
            return await awaitable
    except TimeoutError:
        raise DemoFailed(f"{what} did not finish within the demo's timeout") from None
    except DemoFailed:
        raise
    except Exception as exc:
        raise DemoFailed(f"{what} failed: {exc}") from exc


def _spawn_worker(demo: Demo, bootstrap: str, topics_path: Path, app_id: str) -> WorkerProcess:
    command = [
        *returnhook_command(),
        "worker",
        "--broker",
        bootstrap,
        "--topics-file",
        str(topics_path.resolve()),
        "--app-id",
        app_id,
        "--without-web",
        "--log-level",
        "info",
        "--retry-delays",
        RETRY_DELAYS,
        "--egress-allow",
        EGRESS_ALLOW,
    ]
    env = {
        **os.environ,
        demo_data.TOKEN_ENV: f"demo-{secrets.token_urlsafe(12)}",
        "PYTHONUNBUFFERED": "1",
    }
    # Its own session: Ctrl-C reaches the demo, which stops the worker in order.
    return WorkerProcess("worker", command, log_path=demo.worker_log, env=env).start()


async def _wait_until_ready(demo: Demo) -> None:
    """Until the worker's log shows its partitions assigned and every service started."""
    while True:
        _check_alive(demo, "during its startup")
        if demo.worker is not None and worker_ready(demo.worker.log_text()):
            return
        if demo.remaining() <= 0:
            raise DemoFailed(
                f"the worker was not ready within {demo.timeout:g} s; its log "
                f"({demo.worker_log}):\n{demo.worker_log_tail()}"
            )
        await asyncio.sleep(0.1)


def _check_alive(demo: Demo, when: str) -> None:
    """Fail at once (not at the timeout) when the broker or the worker is gone."""
    if demo.broker is not None and not demo.broker.running:
        raise DemoFailed(
            f"the embedded broker exited {when}; its log ({demo.broker.log_path}):\n"
            f"{demo.broker.log_tail()}"
        )
    if demo.worker is not None and demo.worker.returncode is not None:
        raise DemoFailed(
            f"the worker exited with code {demo.worker.returncode} {when}; its log "
            f"({demo.worker_log}):\n{demo.worker_log_tail()}"
        )


async def _close_quietly(closing: Any, timeout: float = 5.0) -> None:
    """Closes a Kafka client without letting a dead broker turn cleanup into a new failure.

    aiokafka's ``stop()`` can raise the CancelledError of its own fetch task; that one is
    swallowed, a cancellation of the demo itself (Ctrl-C) is not.
    """
    task = asyncio.current_task()
    try:
        async with asyncio.timeout(timeout):
            await closing
    except asyncio.CancelledError:
        if task is not None and task.cancelling():
            raise
    except Exception as exc:
        logging.getLogger(__name__).debug("closing a Kafka client failed: %s", exc)


async def _produce(bootstrap: str, topic: str, values: list[dict[str, Any]]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=False,  # the embedded broker has no InitProducerId
        request_timeout_ms=15000,
    )
    await producer.start()
    try:
        for value in values:
            key = value["order"]["id"].encode()
            await producer.send_and_wait(topic, value=orjson.dumps(value), key=key)
    finally:
        await _close_quietly(producer.stop())


async def _start_reader(bootstrap: str, catalog: TopicCatalog) -> AIOKafkaConsumer:
    """All partitions of the output topics from the beginning; no group, no end offsets."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=_FETCH_MAX_WAIT_MS,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
    await consumer.start()
    try:
        consumer.assign(
            [
                TopicPartition(spec.name, partition)
                for spec in (catalog.events, catalog.patches, catalog.dead_letters)
                for partition in range(spec.partitions)
            ]
        )
        await consumer.seek_to_beginning()
    except BaseException:
        await _close_quietly(consumer.stop())
        raise
    return consumer


async def _collect(demo: Demo, consumer: AIOKafkaConsumer, catalog: TopicCatalog) -> Outcomes:
    roles = {spec.name: role for role, spec in catalog.by_role().items()}
    outcomes = Outcomes()
    while not all(outcomes.arrived(e) for e in EXPECTED):
        _check_alive(demo, "while the demo waited for outcomes")
        if demo.remaining() <= 0:
            break  # what did arrive is still shown; the missing ones are reported as problems
        batches = await consumer.getmany(timeout_ms=200)
        for records in batches.values():
            for record in records:
                role = roles.get(record.topic)
                if role not in ("events", "patches", "deadLetters"):
                    continue
                try:
                    value = orjson.loads(record.value)
                except orjson.JSONDecodeError:
                    value = {"undecodable": repr(record.value[:80])}
                if role == "deadLetters":
                    say(
                        f"  [red]dead letter[/] {escape(str(value.get('key')))}: "
                        f"{escape(str(value.get('reason')))}: {escape(str(value.get('error')))}"
                    )
                outcomes.add(role, value)
    return outcomes


async def _shutdown(
    demo: Demo, *, quiet: bool = False, worker_timeout: float = _WORKER_STOP_TIMEOUT
) -> None:
    """Worker first (it commits through the broker), then the receiver, then the broker."""
    tell = (lambda _text: None) if quiet else console.print
    if demo.worker is not None:
        pid = demo.worker.pid
        code = await asyncio.to_thread(demo.stop_worker, worker_timeout)
        tell(f"stopped worker (pid {pid}, exit code {code})")
    if demo.receiver is not None:
        runner, demo.receiver = demo.receiver, None
        await runner.cleanup()
        tell("stopped demo webhook receiver")
    if demo.broker is not None:
        pid = demo.broker.pid
        await asyncio.to_thread(demo.stop_broker)
        tell(f"stopped embedded broker (pid {pid})")
