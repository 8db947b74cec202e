"""How every Kafka client of the project connects: one model, mapped onto each client library.

Field names follow Kafka's own properties (``security.protocol`` → ``security_protocol``,
``ssl.ca.location`` → ``ssl_ca_file``, ``sasl.mechanism`` → ``sasl_mechanism``), as
``RETURNHOOK_*`` variables, flags and config-file keys. The worker's faust app, ``topics apply``,
``settings publish/show/list``, ``replay`` and ``check`` all build their clients from it, so a
cluster that works for one works for all. Secrets are ``SecretStr``: a dump, a repr or a log
line shows ``**********``; they are read only where a client is built.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"]
CompressionType = Literal["none", "gzip", "snappy", "lz4", "zstd"]

TLS_PROTOCOLS = frozenset({"SSL", "SASL_SSL"})
SASL_PROTOCOLS = frozenset({"SASL_PLAINTEXT", "SASL_SSL"})


class ConnectionConfigError(ValueError):
    """A connection setting cannot be used (a file that is missing, a key that does not load).

    The message names the setting and the file, never a password.
    """


class KafkaConnection(BaseSettings):
    """Bootstrap servers, TLS, SASL and output compression, for every client we open."""

    model_config = SettingsConfigDict(env_prefix="RETURNHOOK_", extra="forbid")

    broker: str | None = Field(
        default=None,
        description="Kafka bootstrap servers (host:port[,host:port]); unset = embedded",
    )
    security_protocol: SecurityProtocol = Field(
        default="PLAINTEXT", description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"
    )
    ssl_ca_file: Path | None = Field(
        default=None, description="PEM CA bundle that signed the brokers; unset = system CAs"
    )
    ssl_cert_file: Path | None = Field(
        default=None, description="PEM client certificate (mutual TLS)"
    )
    ssl_key_file: Path | None = Field(default=None, description="PEM private key of the cert")
    ssl_key_password: SecretStr | None = Field(default=None, description="password of the key")
    ssl_check_hostname: bool = Field(
        default=True, description="the broker's certificate must name the host connected to"
    )
    sasl_mechanism: SaslMechanism = Field(
        default="PLAIN", description="PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER"
    )
    sasl_username: str | None = None
    sasl_password: SecretStr | None = Field(
        default=None, description="SASL password (OAUTHBEARER: the token)"
    )
    sasl_password_file: Path | None = Field(
        default=None,
        description="file holding the SASL password or token (a mounted secret); read at connect",
    )
    compression_type: CompressionType = Field(
        default="none", description="compression of the records we produce"
    )

    # -- normalising and checking -------------------------------------------------------------

    @field_validator("security_protocol", mode="before")
    @classmethod
    def _protocol_case(cls, value: Any) -> Any:
        """``sasl_ssl`` and ``sasl-ssl`` read as ``SASL_SSL``."""
        return value.strip().upper().replace("-", "_") if isinstance(value, str) else value

    @field_validator("sasl_mechanism", mode="before")
    @classmethod
    def _mechanism_case(cls, value: Any) -> Any:
        """``scram-sha-512`` and ``SCRAM_SHA_512`` read as ``SCRAM-SHA-512``."""
        return value.strip().upper().replace("_", "-") if isinstance(value, str) else value

    @field_validator("compression_type", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _consistent(self) -> KafkaConnection:
        protocol = self.security_protocol
        tls_files = {
            "ssl_ca_file": self.ssl_ca_file,
            "ssl_cert_file": self.ssl_cert_file,
            "ssl_key_file": self.ssl_key_file,
        }
        given = [name for name, value in tls_files.items() if value is not None]
        if given and protocol not in TLS_PROTOCOLS:
            raise ValueError(
                f"{', '.join(given)} set but security_protocol is {protocol}: "
                "use SSL or SASL_SSL for TLS"
            )
        if self.ssl_key_file is not None and self.ssl_cert_file is None:
            raise ValueError("ssl_key_file needs ssl_cert_file (the client certificate)")
        if self.ssl_key_password is not None and self.ssl_cert_file is None:
            raise ValueError("ssl_key_password needs ssl_cert_file and ssl_key_file")
        if self.sasl_password is not None and self.sasl_password_file is not None:
            raise ValueError("set sasl_password or sasl_password_file, not both")
        if protocol in SASL_PROTOCOLS:
            has_password = self.sasl_password is not None or self.sasl_password_file is not None
            if self.sasl_mechanism == "OAUTHBEARER":
                if not has_password:
                    raise ValueError(
                        "OAUTHBEARER needs the token in sasl_password or sasl_password_file"
                    )
            elif not self.sasl_username or not has_password:
                raise ValueError(
                    f"{protocol} with {self.sasl_mechanism} needs sasl_username and "
                    "sasl_password (or sasl_password_file)"
                )
        return self

    # -- what the clients need ----------------------------------------------------------------

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in TLS_PROTOCOLS

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol in SASL_PROTOCOLS

    @property
    def servers(self) -> list[str]:
        return [s.strip() for s in (self.broker or "").split(",") if s.strip()]

    @property
    def bootstrap(self) -> str:
        if not self.broker:
            raise ConnectionConfigError("no broker configured (--broker or RETURNHOOK_BROKER)")
        return ",".join(self.servers)

    def describe(self) -> str:
        """What is used, for messages: ``SASL_SSL (SCRAM-SHA-512)``; never a secret."""
        if self.uses_sasl:
            return f"{self.security_protocol} ({self.sasl_mechanism})"
        if self.ssl_cert_file is not None:
            return f"{self.security_protocol} (client certificate)"
        return self.security_protocol

    def password(self) -> str | None:
        """The SASL password (or token), from the file when one is given: read now, not cached."""
        if self.sasl_password_file is not None:
            try:
                return self.sasl_password_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConnectionConfigError(
                    f"sasl_password_file {self.sasl_password_file}: {exc.strerror or exc}"
                ) from None
        return self.sasl_password.get_secret_value() if self.sasl_password else None

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context of every aiokafka and faust client; None without TLS."""
        if not self.uses_tls:
            return None
        cafile = self._readable("ssl_ca_file", self.ssl_ca_file)
        try:
            context = ssl.create_default_context(cafile=cafile)
        except ssl.SSLError as exc:
            raise ConnectionConfigError(
                f"ssl_ca_file {cafile}: not a PEM CA bundle ({exc.reason or exc})"
            ) from None
        context.check_hostname = self.ssl_check_hostname
        if self.ssl_cert_file is not None:
            certfile = self._readable("ssl_cert_file", self.ssl_cert_file)
            keyfile = self._readable("ssl_key_file", self.ssl_key_file)
            password = self.ssl_key_password.get_secret_value() if self.ssl_key_password else None
            try:
                context.load_cert_chain(certfile, keyfile, password=password)
            except ssl.SSLError as exc:
                # Never the password itself; the reason is OpenSSL's (e.g. BAD_DECRYPT).
                raise ConnectionConfigError(
                    f"ssl_cert_file {certfile} / ssl_key_file {keyfile or certfile}: cannot load "
                    f"the client certificate and key ({exc.reason or 'wrong key password?'})"
                ) from None
        return context

    def aiokafka_options(self) -> dict[str, Any]:
        """Keyword arguments for AIOKafkaConsumer/Producer/AdminClient (bootstrap included)."""
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap,
            "security_protocol": self.security_protocol,
        }
        context = self.ssl_context()
        if context is not None:
            options["ssl_context"] = context
        if self.uses_sasl:
            options["sasl_mechanism"] = self.sasl_mechanism
            if self.sasl_mechanism == "OAUTHBEARER":
                options["sasl_oauth_token_provider"] = _token_provider(self)
            else:
                options["sasl_plain_username"] = self.sasl_username
                options["sasl_plain_password"] = self.password()
        return options

    def producer_options(self) -> dict[str, Any]:
        """``aiokafka_options`` plus the output compression."""
        compression = None if self.compression_type == "none" else self.compression_type
        return {**self.aiokafka_options(), "compression_type": compression}

    def faust_options(self) -> dict[str, Any]:
        """Settings for ``faust.App``: ``broker_credentials`` and the producer's compression."""
        import faust

        compression = None if self.compression_type == "none" else self.compression_type
        options: dict[str, Any] = {"producer_compression_type": compression}
        context = self.ssl_context()
        if self.uses_sasl:
            if self.sasl_mechanism == "OAUTHBEARER":
                options["broker_credentials"] = faust.auth.OAuthCredentials(
                    oauth_cb=_token_provider(self), ssl_context=context
                )
            else:
                options["broker_credentials"] = faust.SASLCredentials(
                    username=self.sasl_username,
                    password=self.password(),
                    ssl_context=context,
                    mechanism=self.sasl_mechanism,
                )
        elif context is not None:
            options["broker_credentials"] = faust.SSLCredentials(context)
        return options

    def librdkafka_config(self) -> dict[str, str]:
        """The same connection as librdkafka (confluent-kafka) properties, for other clients."""
        config: dict[str, str] = {
            "bootstrap.servers": self.bootstrap,
            "security.protocol": self.security_protocol,
            "compression.type": self.compression_type,
        }
        if self.uses_tls:
            if self.ssl_ca_file is not None:
                config["ssl.ca.location"] = str(self.ssl_ca_file)
            if self.ssl_cert_file is not None:
                config["ssl.certificate.location"] = str(self.ssl_cert_file)
            if self.ssl_key_file is not None:
                config["ssl.key.location"] = str(self.ssl_key_file)
            if self.ssl_key_password is not None:
                config["ssl.key.password"] = self.ssl_key_password.get_secret_value()
            config["ssl.endpoint.identification.algorithm"] = (
                "https" if self.ssl_check_hostname else "none"
            )
        if self.uses_sasl:
            config["sasl.mechanism"] = self.sasl_mechanism
            if self.sasl_mechanism != "OAUTHBEARER":
                config["sasl.username"] = self.sasl_username or ""
                config["sasl.password"] = self.password() or ""
        return config

    def connection_only(self) -> KafkaConnection:
        """Just the connection fields (a subclass such as the worker's config carries more)."""
        return KafkaConnection.model_construct(
            **{name: getattr(self, name) for name in KafkaConnection.model_fields}
        )

    @staticmethod
    def _readable(setting: str, path: Path | None) -> str | None:
        if path is None:
            return None
        if not path.is_file():
            raise ConnectionConfigError(f"{setting} {path} does not exist or is not a file")
        return str(path)


def _token_provider(connection: KafkaConnection) -> Any:
    """OAUTHBEARER with a token from the password (file): re-read at every login, so a token
    that a sidecar refreshes in a mounted file is picked up without a restart."""
    from aiokafka.abc import AbstractTokenProvider

    class FileOrSecretToken(AbstractTokenProvider):  # type: ignore[misc]
        async def token(self) -> str:
            return connection.password() or ""

    return FileOrSecretToken()


Connectable = KafkaConnection | str


def connection_of(target: Connectable) -> KafkaConnection:
    """A bare bootstrap string means PLAINTEXT (the embedded broker, tests); no env is read."""
    if isinstance(target, KafkaConnection):
        return target
    return KafkaConnection.model_construct(broker=target)
