"""Can we talk to the brokers with this connection, and if not, why? One line that says so.

Kafka clients retry quietly and end with "Unable to bootstrap": the cause (a CA that did not
sign the broker, a client certificate the broker wants, a refused login) is only in their logs.
So every command first probes the bootstrap servers itself, step by step, and turns the first
failure into one line naming the broker and the cause: TCP connect, then the TLS handshake and a
Kafka request over it, then aiokafka's own connection with SASL.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct

from aiokafka.conn import create_conn
from aiokafka.errors import (
    AuthenticationFailedError,
    KafkaConnectionError,
    KafkaError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)
from pydantic import BaseModel, ConfigDict

from streams.kafka.connection import ConnectionConfigError, KafkaConnection

_CLIENT_ID = b"returnhook-probe"
# ApiVersions v0: api key 18, version 0, correlation id 1, client id. Every broker answers it.
_API_VERSIONS = struct.pack(">hhih", 18, 0, 1, len(_CLIENT_ID)) + _CLIENT_ID
_API_VERSIONS_FRAME = struct.pack(">i", len(_API_VERSIONS)) + _API_VERSIONS


class ServerProbe(BaseModel):
    """What one bootstrap server answered."""

    model_config = ConfigDict(frozen=True)

    server: str
    reachable: bool
    handshake: bool
    """TLS and/or SASL as configured, and a Kafka answer over it."""
    error: str | None = None


class KafkaUnavailable(ConnectionError):
    """No bootstrap server can be used; the message is one line for the CLI."""


async def probe_server(connection: KafkaConnection, server: str, timeout: float) -> ServerProbe:
    host, _, port_text = server.rpartition(":")
    host = host.strip("[]")
    try:
        port = int(port_text)
    except ValueError:
        return ServerProbe(server=server, reachable=False, handshake=False, error="not host:port")
    try:
        await _tcp(host, port, timeout)
    except (OSError, TimeoutError) as exc:
        return ServerProbe(server=server, reachable=False, handshake=False, error=explain(exc))
    try:
        try:
            await _kafka_answer(connection, host, port, timeout)
        except TimeoutError:
            if not connection.uses_tls:
                raise
            error = f"no answer to the TLS handshake within {timeout:g} s (a plaintext listener?)"
            return ServerProbe(server=server, reachable=True, handshake=False, error=error)
        await _aiokafka_login(connection, host, port, timeout)
    except ConnectionConfigError as exc:
        return ServerProbe(server=server, reachable=True, handshake=False, error=str(exc))
    except (OSError, TimeoutError, KafkaError, asyncio.IncompleteReadError) as exc:
        return ServerProbe(
            server=server, reachable=True, handshake=False, error=explain(exc, connection)
        )
    return ServerProbe(server=server, reachable=True, handshake=True)


async def probe(connection: KafkaConnection, timeout: float = 10.0) -> list[ServerProbe]:
    """Every bootstrap server, in parallel."""
    return list(
        await asyncio.gather(*(probe_server(connection, s, timeout) for s in connection.servers))
    )


async def ensure_reachable(connection: KafkaConnection, timeout: float = 10.0) -> None:
    """Returns when at least one bootstrap server completes the handshake; else raises
    ``KafkaUnavailable`` with one line about the first that failed."""
    results = await probe(connection, timeout)
    if any(r.handshake for r in results):
        return
    if not results:
        raise KafkaUnavailable("no broker configured (--broker or RETURNHOOK_BROKER)")
    failed = results[0]
    raise KafkaUnavailable(
        f"cannot connect to Kafka at {failed.server} ({connection.describe()}): {failed.error}"
    )


def explain(exc: BaseException, connection: KafkaConnection | None = None) -> str:
    """The cause of a failed connection, in words an operator can act on; never a secret."""
    protocol = connection.security_protocol if connection else "PLAINTEXT"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {(exc.verify_message or str(exc)).rstrip('.')}"
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason or type(exc).__name__
        if "CERTIFICATE_REQUIRED" in reason:
            return "the broker requires a client certificate (set ssl_cert_file and ssl_key_file)"
        if "UNKNOWN_CA" in reason or "BAD_CERTIFICATE" in reason:
            return f"the broker refused our client certificate ({reason})"
        if "WRONG_VERSION_NUMBER" in reason or "RECORD_LAYER" in reason:
            return f"TLS handshake failed: the port does not speak TLS ({reason})"
        return f"TLS handshake failed: {reason}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (nothing listens there)"
    if isinstance(exc, socket.gaierror):
        return f"unknown host ({exc.strerror or exc})"
    if isinstance(exc, TimeoutError):
        return "no answer in time (a firewall, or not a Kafka port?)"
    closed = asyncio.IncompleteReadError | KafkaConnectionError | ConnectionResetError
    if isinstance(exc, closed | BrokenPipeError):
        if protocol in ("SSL", "SASL_SSL"):
            if connection is not None and connection.ssl_cert_file is None:
                return (
                    "the broker closed the TLS connection: it requires a client certificate "
                    "(set ssl_cert_file and ssl_key_file)"
                )
            return (
                "the broker closed the TLS connection: it did not accept our client "
                "certificate (signed by a CA it does not trust?)"
            )
        return (
            "the broker closed the connection at once "
            "(does its listener expect TLS? then use security_protocol SSL or SASL_SSL)"
        )
    if isinstance(exc, UnsupportedSaslMechanismError):
        mechanism = connection.sasl_mechanism if connection else "?"
        text = _message(exc)
        detail = text[text.index("Enabled") :] if "Enabled" in text else "is SASL enabled there?"
        return f"authentication failed: the broker does not accept SASL {mechanism} ({detail})"
    if isinstance(exc, SaslAuthenticationFailed | AuthenticationFailedError):
        return f"authentication failed ({_message(exc)})"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc) or type(exc).__name__
    return _message(exc)


def _message(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


async def _tcp(host: str, port: int, timeout: float) -> None:
    async with asyncio.timeout(timeout):
        _, writer = await asyncio.open_connection(host, port)
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


async def _kafka_answer(connection: KafkaConnection, host: str, port: int, timeout: float) -> None:
    """TLS as configured (or none), one ApiVersions request, the size of its answer read back.

    Reading an answer matters: with TLS 1.3 a server's "certificate required" alert arrives
    after the client thinks the handshake is done.
    """
    context = connection.ssl_context()
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(
            host, port, ssl=context, server_hostname=host if context else None
        )
        try:
            writer.write(_API_VERSIONS_FRAME)
            await writer.drain()
            await reader.readexactly(4)
        finally:
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError):
                await writer.wait_closed()


async def _aiokafka_login(
    connection: KafkaConnection, host: str, port: int, timeout: float
) -> None:
    """The client library's own connection: ApiVersions and, with SASL, the login."""
    if not connection.uses_sasl:
        return
    options = connection.aiokafka_options()
    options.pop("bootstrap_servers")
    async with asyncio.timeout(timeout):
        conn = await create_conn(
            host,
            port,
            client_id=_CLIENT_ID.decode(),
            request_timeout_ms=int(timeout * 1000),
            **options,
        )
    conn.close()
