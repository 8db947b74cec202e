"""The same Kafka connection flags on every command that talks to Kafka.

``@connection_options`` adds the flags to a command's signature (typer reads it) and hands them
to the command as one ``connection_flags`` dict, for ``load_config`` to merge above the
environment and the config file. Passwords have no flag (a command line is visible in ``ps``):
they come from ``RETURNHOOK_SASL_PASSWORD``/``RETURNHOOK_SSL_KEY_PASSWORD``, the config file, or
``--sasl-password-file``.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

F = TypeVar("F", bound=Callable[..., Any])

_PANEL = "Kafka connection"

CONNECTION_FLAGS: dict[str, tuple[Any, Any]] = {
    "security_protocol": (
        str | None,
        typer.Option(
            help="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL [env RETURNHOOK_SECURITY_PROTOCOL]",
            rich_help_panel=_PANEL,
        ),
    ),
    "ssl_ca_file": (
        Path | None,
        typer.Option(
            help="PEM CA bundle of the brokers (default: system CAs)", rich_help_panel=_PANEL
        ),
    ),
    "ssl_cert_file": (
        Path | None,
        typer.Option(help="PEM client certificate, for mutual TLS", rich_help_panel=_PANEL),
    ),
    "ssl_key_file": (
        Path | None,
        typer.Option(help="PEM private key of the client certificate", rich_help_panel=_PANEL),
    ),
    "ssl_check_hostname": (
        bool | None,
        typer.Option(
            "--ssl-check-hostname/--no-ssl-check-hostname",
            help="the broker's certificate must name the host (default: on)",
            rich_help_panel=_PANEL,
        ),
    ),
    "sasl_mechanism": (
        str | None,
        typer.Option(
            help="PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER", rich_help_panel=_PANEL
        ),
    ),
    "sasl_username": (str | None, typer.Option(help="SASL user name", rich_help_panel=_PANEL)),
    "sasl_password_file": (
        Path | None,
        typer.Option(
            help="file with the SASL password or token (or RETURNHOOK_SASL_PASSWORD)",
            rich_help_panel=_PANEL,
        ),
    ),
    "compression_type": (
        str | None,
        typer.Option(
            help="compression of produced records: none, gzip, snappy, lz4, zstd",
            rich_help_panel=_PANEL,
        ),
    ),
}


def connection_options(command: F) -> F:
    """Adds the connection flags; the command receives them as ``connection_flags``."""
    signature = inspect.signature(command)
    # Resolved now: string annotations (``from __future__ import annotations``) would be
    # looked up in the wrong module once the signature belongs to the wrapper.
    hints = typing.get_type_hints(command, include_extras=True)
    own = [
        p.replace(annotation=hints.get(name, p.annotation))
        for name, p in signature.parameters.items()
        if name != "connection_flags"
    ]
    added = [
        inspect.Parameter(
            name,
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=Annotated[kind, option],
        )
        for name, (kind, option) in CONNECTION_FLAGS.items()
    ]

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        flags = {name: kwargs.pop(name, None) for name in CONNECTION_FLAGS}
        return command(*args, connection_flags=flags, **kwargs)

    ordered = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own] + added
    wrapper.__signature__ = signature.replace(parameters=ordered)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {
        **{p.name: p.annotation for p in own},
        **{p.name: p.annotation for p in added},
        "return": hints.get("return"),
    }
    return wrapper  # type: ignore[return-value]
