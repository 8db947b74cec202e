"""The one connection model (streams/kafka/connection.py): validation, and its mapping onto
aiokafka, faust and librdkafka, option by option. The TLS integration test proves the mapping
against a real TLS endpoint; SASL has no broker here (see the README), so its mapping is
checked here only."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import faust
import pytest
from pydantic import ValidationError

from streams.kafka.connection import ConnectionConfigError, KafkaConnection, connection_of
from tests.tls.certificates import issue, make_authority

SECRET = "s3cr3t-planted-Vq"


def _conn(**fields: Any) -> KafkaConnection:
    return KafkaConnection.model_validate({"broker": "k1:9093, k2:9093", **fields})


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("pki")
    ca = make_authority(directory, "ca")
    client = issue(ca, directory, "client", client=True, key_password=SECRET)
    return {"ca": ca.path, "cert": client.cert_path, "key": client.key_path}


def test_plaintext_by_default() -> None:
    conn = _conn()
    assert conn.aiokafka_options() == {
        "bootstrap_servers": "k1:9093,k2:9093",
        "security_protocol": "PLAINTEXT",
    }
    assert conn.faust_options() == {"producer_compression_type": None}
    assert conn.librdkafka_config() == {
        "bootstrap.servers": "k1:9093,k2:9093",
        "security.protocol": "PLAINTEXT",
        "compression.type": "none",
    }


def test_a_bare_bootstrap_is_plaintext_and_reads_no_environment(monkeypatch) -> None:
    monkeypatch.setenv("RETURNHOOK_SECURITY_PROTOCOL", "SSL")
    assert connection_of("k:1").security_protocol == "PLAINTEXT"
    assert KafkaConnection(broker="k:1").security_protocol == "SSL"


@pytest.mark.parametrize(
    ("given", "protocol", "mechanism"),
    [
        (("sasl_ssl", "scram-sha-512"), "SASL_SSL", "SCRAM-SHA-512"),
        (("SASL-PLAINTEXT", "scram_sha_256"), "SASL_PLAINTEXT", "SCRAM-SHA-256"),
        ((" sasl_ssl ", "plain"), "SASL_SSL", "PLAIN"),
    ],
)
def test_names_are_normalised(given: tuple[str, str], protocol: str, mechanism: str) -> None:
    conn = _conn(
        security_protocol=given[0], sasl_mechanism=given[1], sasl_username="u", sasl_password="p"
    )
    assert (conn.security_protocol, conn.sasl_mechanism) == (protocol, mechanism)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"security_protocol": "TLS"}, "security_protocol"),
        ({"sasl_mechanism": "GSSAPI"}, "sasl_mechanism"),
        ({"compression_type": "brotli"}, "compression_type"),
        ({"ssl_ca_file": "/ca.pem"}, "use SSL or SASL_SSL"),
        ({"security_protocol": "SSL", "ssl_key_file": "/k.pem"}, "needs ssl_cert_file"),
        ({"security_protocol": "SASL_SSL"}, "needs sasl_username and sasl_password"),
        ({"security_protocol": "SASL_SSL", "sasl_username": "u"}, "needs sasl_username"),
        (
            {"security_protocol": "SASL_SSL", "sasl_mechanism": "OAUTHBEARER"},
            "OAUTHBEARER needs the token",
        ),
        ({"sasl_password": "a", "sasl_password_file": "/p"}, "not both"),
    ],
)
def test_inconsistent_settings_are_refused(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        _conn(**fields)
    assert message in str(caught.value)


def test_mutual_tls_maps_onto_every_client(pki: dict[str, Path]) -> None:
    conn = _conn(
        security_protocol="SSL",
        ssl_ca_file=pki["ca"],
        ssl_cert_file=pki["cert"],
        ssl_key_file=pki["key"],
        ssl_key_password=SECRET,
        compression_type="LZ4",
    )
    options = conn.producer_options()
    context = options.pop("ssl_context")
    assert isinstance(context, ssl.SSLContext) and context.check_hostname
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert options == {
        "bootstrap_servers": "k1:9093,k2:9093",
        "security_protocol": "SSL",
        "compression_type": "lz4",
    }
    faust_options = conn.faust_options()
    assert faust_options["producer_compression_type"] == "lz4"
    credentials = faust_options["broker_credentials"]
    assert isinstance(credentials, faust.SSLCredentials)
    assert credentials.protocol.value == "SSL"
    assert conn.librdkafka_config() == {
        "bootstrap.servers": "k1:9093,k2:9093",
        "security.protocol": "SSL",
        "compression.type": "lz4",
        "ssl.ca.location": str(pki["ca"]),
        "ssl.certificate.location": str(pki["cert"]),
        "ssl.key.location": str(pki["key"]),
        "ssl.key.password": SECRET,
        "ssl.endpoint.identification.algorithm": "https",
    }


def test_hostname_check_off(pki: dict[str, Path]) -> None:
    conn = _conn(security_protocol="SSL", ssl_ca_file=pki["ca"], ssl_check_hostname=False)
    context = conn.ssl_context()
    assert context is not None and not context.check_hostname
    assert conn.librdkafka_config()["ssl.endpoint.identification.algorithm"] == "none"


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
def test_sasl_maps_onto_every_client(protocol: str, mechanism: str) -> None:
    conn = _conn(
        security_protocol=protocol,
        sasl_mechanism=mechanism,
        sasl_username="svc-returnhook",
        sasl_password=SECRET,
    )
    options = conn.aiokafka_options()
    assert options["security_protocol"] == protocol
    assert options["sasl_mechanism"] == mechanism
    assert options["sasl_plain_username"] == "svc-returnhook"
    assert options["sasl_plain_password"] == SECRET
    assert ("ssl_context" in options) is (protocol == "SASL_SSL")
    credentials = conn.faust_options()["broker_credentials"]
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.protocol.value == protocol
    assert credentials.mechanism.value == mechanism
    assert (credentials.username, credentials.password) == ("svc-returnhook", SECRET)
    rd = conn.librdkafka_config()
    assert (rd["security.protocol"], rd["sasl.mechanism"]) == (protocol, mechanism)
    assert (rd["sasl.username"], rd["sasl.password"]) == ("svc-returnhook", SECRET)


def test_the_faust_mapping_is_what_faust_gives_aiokafka() -> None:
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    conn = _conn(
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="u",
        sasl_password=SECRET,
    )
    auth = credentials_to_aiokafka_auth(conn.faust_options()["broker_credentials"])
    ours = conn.aiokafka_options()
    for key in (
        "security_protocol",
        "sasl_mechanism",
        "sasl_plain_username",
        "sasl_plain_password",
    ):
        assert auth[key] == ours[key]
    assert isinstance(auth["ssl_context"], ssl.SSLContext)


async def test_password_file_is_read_at_connect_and_oauth_token_too(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text(SECRET + "\n")
    conn = _conn(security_protocol="SASL_SSL", sasl_username="u", sasl_password_file=secret)
    assert conn.aiokafka_options()["sasl_plain_password"] == SECRET
    secret.write_text("rotated")
    assert conn.librdkafka_config()["sasl.password"] == "rotated"

    oauth = _conn(
        security_protocol="SASL_SSL", sasl_mechanism="OAUTHBEARER", sasl_password_file=secret
    )
    provider = oauth.aiokafka_options()["sasl_oauth_token_provider"]
    assert await provider.token() == "rotated"
    credentials = oauth.faust_options()["broker_credentials"]
    assert isinstance(credentials, faust.auth.OAuthCredentials)
    assert credentials.protocol.value == "SASL_SSL"


def test_unusable_files_are_named_without_the_password(
    pki: dict[str, Path], tmp_path: Path
) -> None:
    missing = _conn(security_protocol="SSL", ssl_ca_file=tmp_path / "nope.pem")
    with pytest.raises(ConnectionConfigError, match=r"ssl_ca_file .*nope.pem does not exist"):
        missing.aiokafka_options()
    wrong = _conn(
        security_protocol="SSL",
        ssl_cert_file=pki["cert"],
        ssl_key_file=pki["key"],
        ssl_key_password="not-" + SECRET,
    )
    with pytest.raises(ConnectionConfigError) as caught:
        wrong.ssl_context()
    assert "cannot load the client certificate and key" in str(caught.value)
    assert SECRET not in str(caught.value)
    gone = _conn(
        security_protocol="SASL_SSL", sasl_username="u", sasl_password_file=tmp_path / "none"
    )
    with pytest.raises(ConnectionConfigError, match="sasl_password_file"):
        gone.aiokafka_options()


def test_secrets_never_in_dumps_or_reprs() -> None:
    conn = _conn(
        security_protocol="SASL_SSL",
        sasl_username="u",
        sasl_password=SECRET,
        compression_type="gzip",
    )
    assert SECRET not in repr(conn)
    assert SECRET not in str(conn.model_dump(mode="json"))
    assert SECRET not in conn.describe()
