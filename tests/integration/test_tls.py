"""Mutual TLS for real: a TLS-terminating proxy (tests/tls/proxy.py) in front of a broker that
advertises the proxy, certificates made in the test. Over it: topics apply, settings publish,
the worker, librdkafka producing and reading, replay and check. Refused: a CA that did not sign
the broker, no client certificate, one from another CA, a hostname the certificate does not
name, plaintext to the TLS port; each ends with one line naming the broker and the cause.
A planted key password never shows in any output or log."""

from __future__ import annotations

import asyncio
import os
import ssl
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
import yaml

from streams.kafka.connection import KafkaConnection
from streams.kafka.embedded_broker import EmbeddedBroker
from streams.kafka.topics import REPO_TOPICS_FILE, TopicCatalog, dump_topics, load_topics
from streams.processes.ports import free_port
from tests.integration.conftest import StartWorker
from tests.integration.traffic import return_event
from tests.integration.worker_process import RETURNHOOK
from tests.librdkafka import header, produce, read
from tests.receiver import RecordingReceiver, Reply
from tests.tls.certificates import Authority, Issued, issue, make_authority
from tests.tls.proxy import TlsProxy

pytestmark = pytest.mark.integration

KEY_PASSWORD = f"kp-{uuid.uuid4().hex}-Tq"  # planted: must never show anywhere


@dataclass(frozen=True)
class TlsCluster:
    port: int
    ca: Authority
    other_ca: Authority
    client: Issued
    stranger: Issued
    directory: Path

    @property
    def broker(self) -> str:
        return f"localhost:{self.port}"

    def env(self, **overrides: str | None) -> dict[str, str]:
        """RETURNHOOK_* of a mutual-TLS client; overrides replace (None removes) entries."""
        env = {
            "RETURNHOOK_SECURITY_PROTOCOL": "SSL",
            "RETURNHOOK_SSL_CA_FILE": str(self.ca.path),
            "RETURNHOOK_SSL_CERT_FILE": str(self.client.cert_path),
            "RETURNHOOK_SSL_KEY_FILE": str(self.client.key_path),
            "RETURNHOOK_SSL_KEY_PASSWORD": KEY_PASSWORD,
        }
        for key, value in overrides.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env

    def connection(self) -> KafkaConnection:
        return KafkaConnection.model_validate(
            {
                "broker": self.broker,
                "security_protocol": "SSL",
                "ssl_ca_file": self.ca.path,
                "ssl_cert_file": self.client.cert_path,
                "ssl_key_file": self.client.key_path,
                "ssl_key_password": KEY_PASSWORD,
            }
        )


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsCluster]:
    directory = tmp_path_factory.mktemp("tls")
    ca = make_authority(directory, "test-ca")
    other_ca = make_authority(directory, "other-ca")
    server = issue(ca, directory, "broker", dns=("localhost",))
    client = issue(ca, directory, "worker", client=True, key_password=KEY_PASSWORD)
    stranger = issue(other_ca, directory, "stranger", client=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(server.cert_path, server.key_path)
    context.verify_mode = ssl.CERT_REQUIRED  # mutual TLS: no client certificate, no entry
    context.load_verify_locations(ca.path)
    port = free_port("127.0.0.1")
    log = directory / "tansu.log"
    with (
        EmbeddedBroker(advertised=f"localhost:{port}", log_path=log) as broker,
        TlsProxy(listen_port=port, upstream_port=broker.port or 0, context=context),
    ):
        yield TlsCluster(port, ca, other_ca, client, stranger, directory)


def returnhook(
    *args: str | Path, env: dict[str, str], timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("RETURNHOOK_")}
    return subprocess.run(
        [str(RETURNHOOK), *map(str, args)],
        capture_output=True,
        text=True,
        env={**base, **env},
        timeout=timeout,
        check=False,
    )


def _catalog(directory: Path) -> tuple[TopicCatalog, Path]:
    suffix = uuid.uuid4().hex[:8]
    base = load_topics(REPO_TOPICS_FILE)
    renamed = {
        role: spec.model_copy(
            update={
                "name": f"{spec.name}-{suffix}",
                "partitions": 1 if role == "settings" else 2,
                "replication_factor": 1,
            }
        )
        for role, spec in base.by_role().items()
    }
    catalog = TopicCatalog.model_validate(renamed)
    return catalog, dump_topics(catalog, directory / f"topics-{suffix}.yaml")


def _assert_no_secret(*texts: str) -> None:
    for text in texts:
        assert KEY_PASSWORD not in text


async def test_everything_works_over_mutual_tls(
    tls: TlsCluster, start_worker: StartWorker, receiver: RecordingReceiver, tmp_path: Path
) -> None:
    catalog, topics_file = _catalog(tmp_path)
    env = tls.env()
    applied = returnhook(
        "topics", "apply", "--broker", tls.broker, "--topics-file", topics_file, env=env
    )
    assert applied.returncode == 0, applied.stderr
    assert "created" in applied.stdout

    tenant = f"tls-{uuid.uuid4().hex[:6]}"
    receiver.route("/tls", lambda request: Reply(200, {"orderPatch": {"tags": ["tls"]}}))
    settings = tmp_path / "settings.yaml"
    settings.write_text(
        yaml.safe_dump(
            {
                "tenantId": tenant,
                "returnWorkflow": [
                    {
                        "name": "WebhookReturnWorkflowStep",
                        "properties": [{"key": "Host", "value": receiver.url("/tls")}],
                    }
                ],
            }
        )
    )
    published = returnhook(
        "settings",
        "publish",
        settings,
        "--broker",
        tls.broker,
        "--topics-file",
        topics_file,
        env=env,
    )
    assert published.returncode == 0, published.stderr
    listed = returnhook(
        "settings", "list", "--broker", tls.broker, "--topics-file", topics_file, env=env
    )
    assert listed.returncode == 0 and tenant in listed.stdout, listed.stderr

    from tests.conftest import TestTopics

    topics = TestTopics(catalog=catalog, path=topics_file, bootstrap=tls.broker)
    worker = start_worker(topics, env=env, log_level="debug")
    rdkafka = tls.connection().librdkafka_config()  # librdkafka over the same mutual TLS
    parent = f"00-{uuid.uuid4().hex}-00f067aa0ba902b7-01"
    await asyncio.to_thread(
        produce,
        rdkafka,
        catalog.input.name,
        [(b"o-tls", return_event(tenant, "o-tls", 1), [("traceparent", parent.encode())])],
        compression="lz4",
    )
    requests = await receiver.wait_for_requests(1, path="/tls", timeout=60)
    assert requests[0].header("traceparent") == parent
    events = await asyncio.to_thread(
        read, rdkafka, catalog.events.name, catalog.events.partitions, min_count=1
    )
    assert orjson.loads(events[0].value())["actionStatus"] == "Success"
    assert header(events[0], "traceparent") == parent.encode()

    since = (datetime.now(UTC) - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    # In a thread: the receiver answers the replay's call on this test's event loop.
    replayed = await asyncio.to_thread(
        returnhook,
        "replay",
        "--from",
        since,
        "--broker",
        tls.broker,
        "--topics-file",
        topics_file,
        env={**env, "RETURNHOOK_EGRESS_ALLOW": "127.0.0.0/8"},
    )
    assert replayed.returncode == 0, replayed.stderr
    assert "replayed 1 event(s), 1 call(s) (0 failed)" in replayed.stdout, replayed.stdout
    assert len(receiver.requests_for("/tls")) == 2

    checked = returnhook(
        "check",
        "--broker",
        tls.broker,
        "--topics-file",
        topics_file,
        "--app-id",
        worker.app_id,
        env=env,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SSL (client certificate)" in checked.stdout

    shown = returnhook("config", "show", env=env)
    assert shown.returncode == 0 and "ssl_key_password: '**********'" in shown.stdout
    worker.stop()
    _assert_no_secret(
        applied.stdout,
        applied.stderr,
        published.stdout,
        published.stderr,
        replayed.stdout,
        replayed.stderr,
        checked.stdout,
        shown.stdout,
        worker.log_path.read_text(errors="replace"),
    )


def _refusals(tls: TlsCluster) -> dict[str, tuple[str, dict[str, str], str]]:
    """name: (broker, env, what the one line must say)."""
    return {
        "CA that did not sign the broker": (
            tls.broker,
            tls.env(RETURNHOOK_SSL_CA_FILE=str(tls.other_ca.path)),
            "certificate verify failed",
        ),
        "no client certificate": (
            tls.broker,
            tls.env(
                RETURNHOOK_SSL_CERT_FILE=None,
                RETURNHOOK_SSL_KEY_FILE=None,
                RETURNHOOK_SSL_KEY_PASSWORD=None,
            ),
            "requires a client certificate",
        ),
        "client certificate from another CA": (
            tls.broker,
            tls.env(
                RETURNHOOK_SSL_CERT_FILE=str(tls.stranger.cert_path),
                RETURNHOOK_SSL_KEY_FILE=str(tls.stranger.key_path),
                RETURNHOOK_SSL_KEY_PASSWORD=None,
            ),
            "did not accept our client certificate",
        ),
        "hostname the certificate does not name": (
            f"127.0.0.1:{tls.port}",
            tls.env(),
            "certificate verify failed: IP address mismatch",
        ),
        "plaintext to the TLS port": (tls.broker, {}, "does its listener expect TLS"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "CA that did not sign the broker",
        "no client certificate",
        "client certificate from another CA",
        "hostname the certificate does not name",
        "plaintext to the TLS port",
    ],
)
def test_refused_connections_end_with_one_line(tls: TlsCluster, case: str, tmp_path: Path) -> None:
    broker, env, cause = _refusals(tls)[case]
    _, topics_file = _catalog(tmp_path)
    commands = [
        ("topics", "apply"),
        ("settings", "list"),
        ("replay", "--from", "2026-01-01T00:00:00Z"),
        ("worker", "--app-id", f"refused-{uuid.uuid4().hex[:6]}", "--without-web"),
    ]
    for command in commands:
        done = returnhook(
            *command, "--broker", broker, "--topics-file", topics_file, env=env, timeout=60
        )
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert done.returncode == 1, (command, done.stdout, done.stderr)
        assert len(lines) == 1, (command, done.stderr)
        assert "Traceback" not in done.stderr
        assert f"cannot connect to Kafka at {broker}" in lines[0], lines[0]
        assert cause in lines[0], lines[0]
        _assert_no_secret(done.stdout, done.stderr)


def test_hostname_check_can_be_turned_off(tls: TlsCluster, tmp_path: Path) -> None:
    _, topics_file = _catalog(tmp_path)
    done = returnhook(
        "topics",
        "apply",
        "--broker",
        f"127.0.0.1:{tls.port}",
        "--topics-file",
        topics_file,
        "--no-ssl-check-hostname",
        env=tls.env(),
    )
    assert done.returncode == 0, done.stderr
