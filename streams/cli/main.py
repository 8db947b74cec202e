"""The ``returnhook`` command."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Annotated

import typer
import yaml
from pydantic import ValidationError
from rich.markup import escape
from rich.table import Table

from models.settings import TenantSettings
from streams.cli.broker_choice import broker_or_embedded
from streams.cli.check import check
from streams.cli.connection_options import connection_options
from streams.cli.dead_letters import dead_letters_app
from streams.cli.kafka_access import (
    BrokerOpt,
    ConfigOpt,
    TopicsOpt,
    config_from,
    fail,
    reach,
    set_verbose,
)
from streams.cli.replay import replay
from streams.cli.schemas import schemas
from streams.cli.send import send
from streams.cli.tail import tail
from streams.core.response import describe
from streams.kafka.connection import KafkaConnection
from streams.kafka.no_auto_create import forbid_topic_auto_creation
from streams.kafka.settings_file import SettingsFileError, publish_settings, read_settings_file
from streams.kafka.settings_reader import read_settings_topic
from streams.kafka.topic_admin import (
    KafkaUnreachableError,
    TopicsNotReadyError,
    apply_topics,
    verify_topics,
)
from streams.kafka.topics import TopicCatalog, TopicsFileError, load_topics
from streams.ops.config import WorkerConfig
from streams.ops.console import console
from streams.ops.redaction import SECRETS, masked_settings

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


out = console()
err = console(stderr=True)


@app.callback()
def _global(
    ctx: typer.Context,
    verbose: Annotated[
        bool, typer.Option("--verbose", help="log what the Kafka clients do (and tracebacks)")
    ] = False,
) -> None:
    """Kafka client logs repeat what the one-line error already says: quiet unless --verbose.

    The worker (and the demo) keep their logs: they are long-running and log by design.
    """
    set_verbose(verbose, quiet_clients=ctx.invoked_subcommand not in ("worker", "demo"))


def _require_broker(config: WorkerConfig, what: str) -> KafkaConnection:
    """Commands whose effect must outlive them refuse the throw-away embedded broker."""
    if not config.broker:
        raise fail(
            f"{what} a running Kafka: give --broker or RETURNHOOK_BROKER "
            "(an embedded broker would lose it on exit)"
        )
    reach(config)
    return config.connection_only()


def _verify_topics(
    connection: KafkaConnection, catalog: TopicCatalog, roles: list[str] | None = None
) -> None:
    """Stops with one line when a topic is missing or unlike topics.yaml: nothing auto-creates."""
    try:
        asyncio.run(verify_topics(connection, catalog, roles))
    except (TopicsNotReadyError, KafkaUnreachableError) as exc:
        raise fail(str(exc)) from None


@app.command()
@connection_options
def worker(
    connection_flags: dict[str, object],
    config_file: ConfigOpt = None,
    broker: BrokerOpt = None,
    topics_file: TopicsOpt = None,
    app_id: Annotated[str | None, typer.Option(help="consumer group / faust app id")] = None,
    web_port: Annotated[int | None, typer.Option(help="port of /metrics, /health, …")] = None,
    web: Annotated[bool | None, typer.Option("--web/--without-web")] = None,
    log_level: Annotated[str | None, typer.Option(help="debug|info|warning|error")] = None,
    log_format: Annotated[str | None, typer.Option(help="text|json")] = None,
    log_libraries: Annotated[
        bool | None,
        typer.Option(
            "--log-libraries/--no-log-libraries",
            help="debug logs of aiokafka and faust too (payloads are never logged)",
        ),
    ] = None,
    retry_delays: Annotated[
        str | None, typer.Option(help="seconds before each retry, e.g. 1,5,15")
    ] = None,
    egress_allow: Annotated[
        str | None,
        typer.Option(help="CIDRs/hosts webhooks may reach although private, comma-separated"),
    ] = None,
    secrets_dir: Annotated[
        Path | None,
        typer.Option(help="tenants' secrets as files: DIR/<tenant id>/<NAME>, DIR/_shared/<NAME>"),
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
        "log_format": log_format,
        "log_libraries": log_libraries,
        "retry_delays": retry_delays,
        "egress_allow": egress_allow,
        **connection_flags,
        "secrets_dir": secrets_dir,
    }
    config = config_from(flags, config_file)
    try:
        catalog = load_topics(config.topics_file)
    except TopicsFileError as exc:
        raise fail(str(exc)) from None
    if config.broker:
        reach(config)
        _verify_topics(config.connection_only(), catalog)
    with broker_or_embedded(config.broker, catalog) as bootstrap:
        run_worker(config.model_copy(update={"broker": bootstrap}), catalog)


def run_worker(config: WorkerConfig, catalog: object) -> None:
    import faust

    from streams.ops.event_loop import use_uvloop
    from streams.ops.gc_tuning import tune_gc
    from streams.ops.log_format import install, skip_unused_record_fields
    from streams.ops.payload_filter import scope_levels
    from streams.worker.app import Returnhook

    use_uvloop()  # before anything creates the loop
    skip_unused_record_fields()
    forbid_topic_auto_creation()
    root_level, own_levels = scope_levels(config.log_level, config.log_libraries)

    class Worker(faust.Worker):
        def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
            super().on_setup_root_logger(logger, level)
            install(logger, config.log_format)
            for name, own in own_levels.items():
                logging.getLogger(name).setLevel(own)
            if own_levels:  # the handlers pass what our loggers let through; the root stays INFO
                for handler in logger.handlers:
                    handler.setLevel(logging.DEBUG)

    returnhook = Returnhook(config, catalog)  # type: ignore[arg-type]
    tune_gc()
    Worker(
        returnhook.app,
        loglevel=root_level,
        quiet=True,
        redirect_stdouts=False,
    ).execute_from_commandline()


@topics_app.command("apply")
@connection_options
def topics_apply(
    connection_flags: dict[str, object],
    broker: BrokerOpt = None,
    topics_file: TopicsOpt = None,
    config_file: ConfigOpt = None,
) -> None:
    """Create missing topics and check existing ones against topics.yaml."""
    config = config_from(
        {"broker": broker, "topics_file": topics_file, **connection_flags}, config_file
    )
    try:
        catalog = load_topics(config.topics_file)
    except TopicsFileError as exc:
        raise fail(str(exc)) from None
    connection = _require_broker(config, "topics are created on")
    try:
        reports = asyncio.run(apply_topics(connection, catalog))
    except Exception as exc:
        raise fail(str(exc)) from None
    table = Table("role", "topic", "result", "detail")
    for report in reports:
        table.add_row(report.role, report.name, report.action, report.detail or "")
    out.print(table)
    if any(r.action == "mismatch" for r in reports):
        raise typer.Exit(code=1)


@settings_app.command("publish")
@connection_options
def settings_publish(
    connection_flags: dict[str, object],
    file: Annotated[Path, typer.Argument(help="YAML or JSON: one tenant or a list")],
    broker: BrokerOpt = None,
    topics_file: TopicsOpt = None,
    config_file: ConfigOpt = None,
) -> None:
    """Validate a settings file and publish each tenant's settings (nothing if any is invalid)."""
    config = config_from(
        {"broker": broker, "topics_file": topics_file, **connection_flags}, config_file
    )
    try:
        tenants, warnings = read_settings_file(file)
        catalog = load_topics(config.topics_file)
    except SettingsFileError as exc:
        err.print(f"[red]error:[/] {exc.path} is not valid tenant settings:", highlight=False)
        for problem in exc.problems:
            err.print(f"  {problem}", highlight=False, markup=False)
        err.print("Nothing was published.")
        raise typer.Exit(code=1) from None
    except TopicsFileError as exc:
        raise fail(str(exc)) from None
    for warning in warnings:
        err.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)
    connection = _require_broker(config, "settings are published to")
    _verify_topics(connection, catalog, ["settings"])
    forbid_topic_auto_creation()
    try:
        asyncio.run(publish_settings(connection, catalog.settings.name, tenants))
    except Exception as exc:
        raise fail(f"publishing to {connection.bootstrap} failed: {exc}") from None
    names = ", ".join(t.tenant_id for t in tenants)
    out.print(f"published settings of {len(tenants)} tenant(s) to {catalog.settings.name}: {names}")


config_app = typer.Typer(help="The worker's effective configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")


@config_app.command("show")
@connection_options
def config_show(
    connection_flags: dict[str, object], config_file: ConfigOpt = None, broker: BrokerOpt = None
) -> None:
    """Print the effective worker configuration (flags > RETURNHOOK_* > config file > defaults).

    Passwords show as ********** (they are SecretStr), a password in the broker URL is masked.
    """
    config = config_from({"broker": broker, **connection_flags}, config_file)
    data = config.model_dump(mode="json")
    if data.get("broker"):
        data["broker"] = SECRETS.mask(data["broker"])
    out.print(yaml.safe_dump(data, sort_keys=True), end="", highlight=False, markup=False)


def _read_settings(
    broker: str | None,
    topics_file: Path | None,
    config_file: Path | None,
    connection_flags: dict[str, object],
) -> dict[str, bytes]:
    config = config_from(
        {"broker": broker, "topics_file": topics_file, **connection_flags}, config_file
    )
    try:
        catalog = load_topics(config.topics_file)
    except TopicsFileError as exc:
        raise fail(str(exc)) from None
    _require_broker(config, "settings are read from")
    try:
        return asyncio.run(read_settings_topic(config.connection_only(), catalog.settings.name))
    except Exception as exc:
        raise fail(f"cannot read {catalog.settings.name} from {config.broker}: {exc}") from None


@settings_app.command("show")
@connection_options
def settings_show(
    connection_flags: dict[str, object],
    tenant: Annotated[str, typer.Argument(help="tenantId")],
    broker: BrokerOpt = None,
    topics_file: TopicsOpt = None,
    config_file: ConfigOpt = None,
) -> None:
    """Print one tenant's published settings as YAML, secrets masked."""
    raw = _read_settings(broker, topics_file, config_file, connection_flags).get(tenant)
    if raw is None:
        raise fail(f"no settings published for tenant {tenant!r}")
    try:
        settings = TenantSettings.model_validate_json(raw)
    except ValidationError as exc:
        raise fail(f"the published settings of {tenant!r} are invalid: {describe(exc)}") from None
    text = yaml.safe_dump(masked_settings(settings), sort_keys=False)
    out.print(text, end="", highlight=False, markup=False)


@settings_app.command("list")
@connection_options
def settings_list(
    connection_flags: dict[str, object],
    broker: BrokerOpt = None,
    topics_file: TopicsOpt = None,
    config_file: ConfigOpt = None,
) -> None:
    """List the tenants with published settings (hosts shown, secrets masked)."""
    table = Table("tenant", "connectors", "steps", "hosts")
    settings = _read_settings(broker, topics_file, config_file, connection_flags)
    for tenant, raw in sorted(settings.items()):
        try:
            settings = TenantSettings.model_validate_json(raw)
        except ValidationError as exc:
            table.add_row(tenant, "-", "-", f"INVALID: {describe(exc)[:80]}")
            continue
        masked = masked_settings(settings)
        hosts = [c.get("host") for c in masked.get("connectors", []) if c.get("host")]
        hosts += [
            p["value"]
            for step in masked.get("returnWorkflow", [])
            for p in step.get("properties", [])
            if p["key"].lower() == "host" and p.get("value")
        ]
        table.add_row(
            tenant,
            str(len(settings.connectors)),
            str(len(settings.return_workflow)),
            ", ".join(dict.fromkeys(h for h in hosts if h)),
        )
    out.print(table)


@app.command()
def demo(
    timeout: Annotated[float, typer.Option(help="give up after this many seconds")] = 90.0,
) -> None:
    """Embedded broker + demo receiver + a worker + demo traffic; prints what came out."""
    from streams.demo.run import run_demo

    raise typer.Exit(code=run_demo(timeout=timeout))


@app.command("demo-receiver")
def demo_receiver(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8080,
) -> None:
    """Serve the demo webhook receiver (accept, enrich, reject, flaky, missing)."""
    from streams.demo.receiver import serve

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


app.command("replay")(replay)
app.command("schemas")(schemas)
app.add_typer(dead_letters_app, name="dead-letters")
app.command("check")(check)
app.command("send")(send)
app.command("tail")(tail)


def main() -> None:
    app()
