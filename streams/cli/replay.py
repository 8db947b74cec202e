"""``returnhook replay``: the command around ``streams.replay.run``.

Registered on the app by ``streams/cli/main.py`` (no import back, no cycle). Progress goes to
stderr (a rich bar on a terminal, a line every few seconds otherwise); the plan of a dry run and
the final summary go to stdout.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from models.webhook import ActionStatus
from streams.cli.connection_options import connection_options
from streams.cli.kafka_access import ConfigOpt, config_from, reach
from streams.kafka.topics import TopicsFileError, load_topics
from streams.ops.console import console
from streams.replay.report import ReplayRequest, ReplayResult, ReplayStats
from streams.replay.run import REPLAY_HEADER, ReplayError, run_replay
from streams.replay.window import (
    TIME_FORMS,
    ReplayTimeError,
    format_time,
    new_replay_id,
    resolve_window,
)

STATUSES: tuple[ActionStatus, ...] = ("Success", "Warning", "Error")
_PLAIN_PROGRESS_EVERY_S = 5.0


def _consoles() -> tuple[Console, Console]:
    return console(), console(stderr=True)


def _fail(err: Console, message: str) -> typer.Exit:
    err.print(f"[red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code=1)


@connection_options
def replay(
    connection_flags: dict[str, object],
    from_: Annotated[
        str,
        typer.Option("--from", help=f"start of the window: {TIME_FORMS}", show_default=False),
    ],
    to: Annotated[
        str | None,
        typer.Option("--to", help="end of the window (exclusive), same forms; default: now"),
    ] = None,
    tenant: Annotated[
        list[str] | None, typer.Option("--tenant", help="only this tenant (repeatable)")
    ] = None,
    order: Annotated[
        list[str] | None, typer.Option("--order", help="only this order id (repeatable)")
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="print what would run; call nothing, produce nothing"),
    ] = False,
    failed: Annotated[
        bool,
        typer.Option(
            "--failed",
            help="only events whose latest order-event since --from is Warning or Error",
        ),
    ] = False,
    broker: Annotated[
        str | None,
        typer.Option("--broker", envvar="RETURNHOOK_BROKER", help="Kafka bootstrap host:port[,…]"),
    ] = None,
    topics_file: Annotated[
        Path | None,
        typer.Option("--topics-file", envvar="RETURNHOOK_TOPICS_FILE", help="topics.yaml to use"),
    ] = None,
    retry_delays: Annotated[
        str | None, typer.Option(help="seconds before each retry, e.g. 1,5,15")
    ] = None,
    egress_allow: Annotated[
        str | None,
        typer.Option(help="CIDRs/hosts webhooks may reach although private, as for the worker"),
    ] = None,
    max_in_flight: Annotated[int | None, typer.Option(help="webhook calls in flight")] = None,
    max_in_flight_per_host: Annotated[
        int | None, typer.Option(help="webhook calls in flight per webhook origin")
    ] = None,
    user_agent: Annotated[str | None, typer.Option(help="User-Agent of the calls")] = None,
    max_response_bytes: Annotated[
        int | None, typer.Option(help="larger answers fail the delivery")
    ] = None,
    connect_timeout: Annotated[
        float, typer.Option(help="seconds to wait for the broker before giving up")
    ] = 10.0,
    verbose: Annotated[bool, typer.Option("--verbose", help="log what the clients do")] = False,
    config_file: ConfigOpt = None,
) -> None:
    """Run the return step again for the events of a time window, marked as a replay.

    No consumer group: the workers' committed offsets never move.
    Outputs go to the usual topics with replayId and a returnhook-replay-id header;
    Idempotency-Keys and record ids are new for every replay.
    """
    out, err = _consoles()
    _logging(verbose)
    now = datetime.now(UTC)
    try:
        start, end = resolve_window(from_, to, now=now)
    except ReplayTimeError as exc:
        raise _fail(err, str(exc)) from None
    flags = {
        "broker": broker,
        "topics_file": topics_file,
        "retry_delays": retry_delays,
        "egress_allow": egress_allow,
        "max_in_flight": max_in_flight,
        "max_in_flight_per_host": max_in_flight_per_host,
        "user_agent": user_agent,
        "max_response_bytes": max_response_bytes,
        **connection_flags,
    }
    config = config_from(flags, config_file)
    try:
        catalog = load_topics(config.topics_file)
    except TopicsFileError as exc:
        raise _fail(err, str(exc).replace("\n", " ")) from None
    if not config.broker:
        raise _fail(
            err,
            "a replay reads a running Kafka: give --broker or RETURNHOOK_BROKER "
            "(an embedded broker would be empty)",
        )
    reach(config, timeout=connect_timeout)
    request = ReplayRequest(
        bootstrap=config.broker,
        catalog=catalog,
        start=start,
        end=end,
        replay_id=new_replay_id(now),
        config=config,
        env=dict(os.environ),
        tenants=frozenset(tenant or ()),
        orders=frozenset(order or ()),
        dry_run=dry_run,
        failed_only=failed,
        connect_timeout_s=connect_timeout,
    )
    try:
        result = _run_with_progress(request, err, lambda stats: _print_header(out, request, stats))
    except ReplayError as exc:
        raise _fail(err, str(exc)) from None
    except KeyboardInterrupt:
        err.print(
            f"interrupted: replay {request.replay_id} stopped; what it wrote so far carries "
            f"{REPLAY_HEADER}: {request.replay_id}",
            markup=False,
        )
        raise typer.Exit(code=130) from None
    for name in result.unknown_tenants:
        out.print(
            f"tenant {name} has no settings on {catalog.settings.name}: its events would be "
            "dead-lettered as unknown_tenant",
            markup=False,
            soft_wrap=True,
        )
    if result.dry_run:
        _print_plan(out, result)
    else:
        _print_summary(out, result)
    _print_reasons(out, result)


def _print_reasons(out: Console, result: ReplayResult, limit: int = 10) -> None:
    """Why steps ended in Warning/Error or events in dead letters, most frequent first."""
    reasons = result.stats.reasons
    if not reasons:
        return
    out.print("failure reasons:", markup=False)
    for (tenant, reason), count in reasons.most_common(limit):
        out.print(f"  {tenant}: {count} × {reason}", markup=False, soft_wrap=True)
    if len(reasons) > limit:
        out.print(f"  … and {len(reasons) - limit} more", markup=False)


def _logging(verbose: bool) -> None:
    """Quiet by default: aiokafka logs connection errors that the one-line error already says."""
    if verbose:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    else:
        logging.getLogger().addHandler(logging.NullHandler())
        logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
        logging.getLogger("returnhook").setLevel(logging.CRITICAL)


def _print_header(out: Console, request: ReplayRequest, stats: ReplayStats) -> None:
    window = f"{format_time(request.start)} → " + (
        format_time(request.end) if request.end else "now"
    )
    mode = "dry run (nothing is called, nothing is produced)" if request.dry_run else "replay"
    out.print(f"{mode}: replay id {request.replay_id}", markup=False, soft_wrap=True)
    out.print(f"window: {window} (record timestamps, UTC) on {request.catalog.input.name}")
    tenants = ", ".join(sorted(request.tenants)) or "all"
    orders = ", ".join(sorted(request.orders)) or "all"
    out.print(f"tenants: {tenants}; orders: {orders}", markup=False, soft_wrap=True)
    starts = ", ".join(f"p{p}@{start}" for p, (start, _) in sorted(stats.ranges.items()))
    out.print(f"start offsets: {starts}", markup=False, soft_wrap=True)
    if stats.failed_found is not None:
        out.print(
            f"failed only: {stats.failed_found} input event(s) whose latest outcome on "
            f"{request.catalog.events.name} since --from is Warning or Error",
            markup=False,
            soft_wrap=True,
        )


def _run_with_progress(
    request: ReplayRequest, err: Console, on_start: Callable[[ReplayStats], None]
) -> ReplayResult:
    if not err.is_terminal:
        return asyncio.run(run_replay(request, _PlainProgress(err), on_start))
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("read {task.fields[read]}/{task.fields[of]}"),
        TextColumn("calls {task.fields[calls]}"),
        TextColumn("failures {task.fields[failures]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    bar = Progress(*columns, console=err, transient=False)
    task = bar.add_task(
        "dry run" if request.dry_run else "replay", total=None, read=0, of="?", calls=0, failures=0
    )

    def started(stats: ReplayStats) -> None:
        on_start(stats)
        bar.start()  # only now: an error before this is one line, without a bar above it

    def update(stats: ReplayStats) -> None:
        bar.update(
            task,
            total=stats.total or None,
            completed=stats.done,
            read=stats.read,
            calls=stats.calls,
            failures=stats.failures,
            of=stats.total or "?",
        )

    try:
        return asyncio.run(run_replay(request, update, started))
    finally:
        bar.stop()


class _PlainProgress:
    """Not a terminal: a plain line now and then, so a long replay in a log shows it is alive."""

    def __init__(self, err: Console) -> None:
        self.err = err
        self.last = time.monotonic()

    def __call__(self, stats: ReplayStats) -> None:
        now = time.monotonic()
        if now - self.last < _PLAIN_PROGRESS_EVERY_S:
            return
        self.last = now
        self.err.print(
            f"progress: {stats.done}/{stats.total or '?'} records done, {stats.read} read, "
            f"{stats.calls} calls, {stats.failures} failures",
            markup=False,
        )


def _skipped_text(stats: ReplayStats) -> str:
    parts = [
        (stats.outside_window, "outside the window"),
        (stats.not_returns, "not a return status"),
        (stats.filtered, "other tenants/orders"),
        (stats.unattributed, "unreadable (not matched to --tenant/--order/--failed)"),
        (stats.not_failed, "not failed (--failed)"),
    ]
    return ", ".join(f"{n} {what}" for n, what in parts if n) or "none"


def _print_plan(out: Console, result: ReplayResult) -> None:
    stats = result.stats
    if not result.plan:
        out.print(
            "nothing to replay: no return event in the window matches", markup=False, soft_wrap=True
        )
    for name in sorted(result.plan):
        plan = result.plan[name]
        out.print(
            f"\ntenant {name}: {plan.events} event(s), {len(plan.orders)} order(s), "
            f"{plan.calls} call(s)",
            markup=False,
        )
        if plan.problem:
            out.print(f"  {plan.problem}", markup=False, soft_wrap=True)
        for (index, step, target), count in sorted(plan.targets.items()):
            out.print(
                f"  step {index} {step} → {target}  ({count} event(s))",
                markup=False,
                soft_wrap=True,
            )
        orders = ", ".join(
            f"{order} (×{count})" if count > 1 else order for order, count in plan.orders.items()
        )
        out.print(f"  orders: {orders}", markup=False, soft_wrap=True)
    calls = sum(p.calls for p in result.plan.values())
    orders_total = sum(len(p.orders) for p in result.plan.values())
    out.print(
        f"\ntotal: {len(result.plan)} tenant(s), {orders_total} order(s), {stats.replayed} "
        f"event(s), {calls} call(s), {stats.dead_letters} dead letter(s); read {stats.read} "
        f"record(s) in {result.elapsed_s:.1f} s; skipped: {_skipped_text(stats)}",
        markup=False,
    )
    out.print("dry run: nothing was called and nothing was produced", markup=False, soft_wrap=True)


def _print_summary(out: Console, result: ReplayResult) -> None:
    stats = result.stats
    out.print(
        f"replay {result.replay_id} done in {result.elapsed_s:.1f} s: read {stats.read} "
        f"record(s), replayed {stats.replayed} event(s), {stats.calls} call(s) "
        f"({stats.failed_calls} failed), {stats.patches} patch(es), "
        f"{sum(stats.outcomes.values())} outcome(s), {stats.dead_letters} dead letter(s)",
        markup=False,
    )
    out.print(f"skipped: {_skipped_text(stats)}", markup=False, soft_wrap=True)
    tenants = sorted({t for t, _ in stats.outcomes} | set(stats.dead_letters_by_tenant))
    if tenants:
        table = Table(title="outcomes by tenant and actionStatus (step outcomes)")
        table.add_column("tenant")
        for status in STATUSES:
            table.add_column(status, justify="right")
        table.add_column("dead letters", justify="right")
        for name in tenants:
            table.add_row(
                name,
                *(str(stats.outcomes[(name, s)]) for s in STATUSES),
                str(stats.dead_letters_by_tenant[name]),
            )
        table.add_row(
            "total",
            *(
                str(sum(n for (_, s), n in stats.outcomes.items() if s == status))
                for status in STATUSES
            ),
            str(stats.dead_letters),
            style="bold",
        )
        out.print(table)
    else:
        out.print(
            "nothing was replayed: no return event in the window matches",
            markup=False,
            soft_wrap=True,
        )
    out.print(
        f"records carry replayId={result.replay_id} and the header "
        f"{REPLAY_HEADER}: {result.replay_id}",
        markup=False,
    )
