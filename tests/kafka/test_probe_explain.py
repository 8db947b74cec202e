"""The one-line causes (streams/kafka/probe.py ``explain``) for what connections fail with."""

from __future__ import annotations

import asyncio
import socket
import ssl

import pytest
from aiokafka.errors import SaslAuthenticationFailed, UnsupportedSaslMechanismError

from streams.kafka.connection import KafkaConnection
from streams.kafka.probe import explain, probe

TLS = KafkaConnection.model_construct(broker="k:1", security_protocol="SSL")
SASL = KafkaConnection.model_construct(
    broker="k:1", security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512"
)


def _verify_error(message: str) -> ssl.SSLCertVerificationError:
    error = ssl.SSLCertVerificationError(1, "certificate verify failed")
    error.verify_message = message
    return error


@pytest.mark.parametrize(
    ("exc", "connection", "expected"),
    [
        (_verify_error("unable to get local issuer certificate"), TLS, "certificate verify failed"),
        (ConnectionRefusedError(), None, "connection refused"),
        (socket.gaierror(-2, "Name or service not known"), None, "unknown host"),
        (TimeoutError(), None, "no answer in time"),
        (asyncio.IncompleteReadError(b"", 4), TLS, "requires a client certificate"),
        (asyncio.IncompleteReadError(b"", 4), None, "expect TLS"),
        (SaslAuthenticationFailed("bad password"), SASL, "authentication failed"),
        (UnsupportedSaslMechanismError("x"), SASL, "does not accept SASL SCRAM-SHA-512"),
    ],
)
def test_causes(exc: BaseException, connection: KafkaConnection | None, expected: str) -> None:
    assert expected in explain(exc, connection)


def test_ssl_reasons() -> None:
    error = ssl.SSLError(1, "x")
    error.reason = "WRONG_VERSION_NUMBER"
    assert "does not speak TLS" in explain(error, TLS)


async def test_probe_of_a_closed_port_says_refused() -> None:
    from streams.processes.ports import free_port

    port = free_port("127.0.0.1")
    [result] = await probe(KafkaConnection.model_construct(broker=f"127.0.0.1:{port}"), 2)
    assert not result.reachable and "connection refused" in (result.error or "")
