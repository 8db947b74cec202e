"""The ``returnhook`` command."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from streams.broker_choice import broker_or_embedded
from streams.config import WorkerConfig
from streams.response import describe
from streams.settings_file import SettingsFileError, load_settings_file, publish_settings
from streams.topic_admin import apply_topics
from streams.topics import TopicsFileError, load_topics

app = typer.Typer(
    help="Omnium's Webhook Return Workflow Step as a Kafka stream processor.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
topics_app = typer.Typer(help="Topics from topics.yaml.", no_args_is_help=True)
settings_app = typer.Typer(
    help="Tenant settings on the compacted settings topic.", no_args_is_help=True
)
app.add_typer(topics_app, name="topics")
app.add_typer(settings_app, name="settings")

out = Console()
err = Console(stderr=True)

BrokerOpt = Annotated[
    str | None,
    typer.Option("--broker", envvar="RETURNHOOK_BROKER", help="Kafka bootstrap host:port[,…]"),
]
TopicsOpt = Annotated[
    Path | None,
    typer.Option("--topics-file", envvar="RETURNHOOK_TOPICS_FILE", help="topics.yaml to use"),
]


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/] {message}", highlight=False)
    return typer.Exit(code=1)


@app.command()
def worker(
    broker: BrokerOpt = None,
    topics_file: TopicsOpt = None,
    app_id: Annotated[str | None, typer.Option(help="consumer group / faust app id")] = None,
    web_port: Annotated[int | None, typer.Option(help="port of /metrics, /health, …")] = None,
    web: Annotated[bool | None, typer.Option("--web/--without-web")] = None,
    log_level: Annotated[str | None, typer.Option(help="debug|info|warning|error")] = None,
    retry_delays: Annotated[
        str | None, typer.Option(help="seconds before each retry, e.g. 1,5,15")
    ] = None,
) -> None:
    """Run a worker: consume order-status-changed, call webhooks, produce patches and events."""
    flags = {
        "broker": broker,
        "topics_file": topics_file,
        "app_id": app_id,
        "web_port": web_port,
        "web_enabled": web,
        "log_level": log_level,
        "retry_delays": retry_delays,
    }
    try:
        config = WorkerConfig(**{k: v for k, v in flags.items() if v is not None})
        catalog = load_topics(config.topics_file)
    except ValidationError as exc:
        raise _fail(f"invalid worker configuration: {describe(exc)}") from None
    except TopicsFileError as exc:
        raise _fail(str(exc)) from None
    with broker_or_embedded(config.broker, catalog) as bootstrap:
        run_worker(config.model_copy(update={"broker": bootstrap}), catalog)


def run_worker(config: WorkerConfig, catalog: object) -> None:
    import faust

    from streams.app import Returnhook

    returnhook = Returnhook(config, catalog)  # type: ignore[arg-type]
    faust.Worker(
        returnhook.app,
        loglevel=config.log_level.upper(),
        quiet=True,
        redirect_stdouts=False,
    ).execute_from_commandline()


@topics_app.command("apply")
def topics_apply(broker: BrokerOpt = None, topics_file: TopicsOpt = None) -> None:
    """Create missing topics and check existing ones against topics.yaml."""
    try:
        catalog = load_topics(topics_file)
    except TopicsFileError as exc:
        raise _fail(str(exc)) from None
    with broker_or_embedded(broker, catalog) as bootstrap:
        try:
            reports = asyncio.run(apply_topics(bootstrap, catalog))
        except Exception as exc:
            raise _fail(str(exc)) from None
    table = Table("role", "topic", "result", "detail")
    for report in reports:
        table.add_row(report.role, report.name, report.action, report.detail or "")
    out.print(table)
    if any(r.action == "mismatch" for r in reports):
        raise typer.Exit(code=1)


@settings_app.command("publish")
def settings_publish(
    file: Annotated[Path, typer.Argument(help="YAML or JSON: one tenant or a list")],
    broker: BrokerOpt = None,
    topics_file: TopicsOpt = None,
) -> None:
    """Validate a settings file and publish each tenant's settings (nothing if any is invalid)."""
    try:
        tenants = load_settings_file(file)
        catalog = load_topics(topics_file)
    except SettingsFileError as exc:
        err.print(f"[red]error:[/] {exc.path} is not valid tenant settings:", highlight=False)
        for problem in exc.problems:
            err.print(f"  {problem}", highlight=False, markup=False)
        err.print("Nothing was published.")
        raise typer.Exit(code=1) from None
    except TopicsFileError as exc:
        raise _fail(str(exc)) from None
    with broker_or_embedded(broker, catalog) as bootstrap:
        try:
            asyncio.run(publish_settings(bootstrap, catalog.settings.name, tenants))
        except Exception as exc:
            raise _fail(f"publishing to {bootstrap} failed: {exc}") from None
    names = ", ".join(t.tenant_id for t in tenants)
    out.print(f"published settings of {len(tenants)} tenant(s) to {catalog.settings.name}: {names}")


@app.command()
def demo(
    timeout: Annotated[float, typer.Option(help="give up after this many seconds")] = 90.0,
) -> None:
    """Embedded broker + demo receiver + a worker + demo traffic; prints what came out."""
    from streams.demo import run_demo

    raise typer.Exit(code=run_demo(timeout=timeout))


@app.command("demo-receiver")
def demo_receiver(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8080,
) -> None:
    """Serve the demo webhook receiver (accept, enrich, reject, flaky, missing)."""
    from streams.demo_receiver import serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    async def forever() -> None:
        runner = await serve(host, port)
        out.print(f"demo receiver on http://{host}:{port}/returns/…")
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    try:
        asyncio.run(forever())
    except KeyboardInterrupt:
        pass


def main() -> None:
    app()
