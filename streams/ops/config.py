"""Worker configuration: flags > ``RETURNHOOK_*`` environment > config file > defaults."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from streams.core.decoder import DEFAULT_MAX_RECORD_BYTES
from streams.core.request import DEFAULT_USER_AGENT
from streams.http.egress import parse_allow
from streams.http.webhook_client import DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_RETRY_DELAYS
from streams.kafka.connection import KafkaConnection

CONFIG_FILE_ENV = "RETURNHOOK_CONFIG_FILE"
#: The share of the rebalance timeout a drain may take; the rest is faust's revoke work.
DRAIN_SHARE_OF_REBALANCE = 0.5


class WorkerConfig(KafkaConnection):
    """Precedence, highest first: CLI flags, ``RETURNHOOK_*`` environment, config file, defaults.

    The Kafka connection (broker, TLS, SASL, compression) is inherited from ``KafkaConnection``,
    so every command reads those options the same way.
    """

    model_config = SettingsConfigDict(env_prefix="RETURNHOOK_", extra="forbid")

    app_id: str = Field(default="returnhook", description="faust app id = consumer group id")
    topics_file: Path | None = Field(default=None, description="topics.yaml to use")
    data_dir: Path | None = Field(
        default=None, description="faust's working directory; default: <tmp>/returnhook/<app id>"
    )
    web_port: int = Field(default=6066, ge=0, le=65535)
    web_host: str = "0.0.0.0"
    web_enabled: bool = True
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["text", "json"] = "text"
    log_libraries: bool = Field(
        default=False,
        description="debug also for aiokafka and faust (their wire logs); payloads never logged",
    )
    retry_delays: Annotated[tuple[float, ...], NoDecode] = Field(
        default=DEFAULT_RETRY_DELAYS, description="seconds to wait before each retry"
    )
    egress_allow: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        description="CIDRs/hosts webhooks may reach although private (e.g. 10.1.0.0/16,.internal)",
    )
    secrets_dir: Path | None = Field(
        default=None,
        description="tenants' secrets as files: <dir>/<tenant id>/<NAME>, <dir>/_shared/<NAME>",
    )
    max_response_bytes: int = Field(default=DEFAULT_MAX_RESPONSE_BYTES, gt=0)
    max_record_bytes: int = Field(default=DEFAULT_MAX_RECORD_BYTES, gt=0)
    user_agent: str = DEFAULT_USER_AGENT
    max_in_flight: int = Field(default=256, gt=0, description="webhook calls in flight per worker")
    max_in_flight_per_host: int = Field(default=64, gt=0)
    max_uncommitted: int = Field(
        default=20_000,
        gt=0,
        description="accepted but unacknowledged events; intake pauses at it",
    )
    max_uncommitted_bytes: int = Field(
        default=256 * 1024 * 1024,
        gt=0,
        description="record bytes of accepted but unacknowledged events; intake pauses at it",
    )
    drain_timeout_s: float = Field(
        default=3.0, ge=0, description="on rebalance/shutdown, how long running calls may finish"
    )
    commit_interval_s: float = Field(
        default=2.8,
        gt=0,
        le=60,
        description="how often finished offsets are committed; a crash redoes up to this much work",
    )
    settings_grace_s: float = Field(
        default=10.0,
        ge=0,
        le=300,
        description="how long an event waits for its tenant's settings before it is "
        "dead-lettered as unknown_tenant (settings reach workers about a second after publish)",
    )
    session_timeout_s: float = Field(default=6.0, ge=6.0)
    heartbeat_interval_s: float = Field(default=1.0, gt=0)
    rebalance_timeout_s: float = Field(default=6.0, gt=0)
    producer_linger_ms: int = Field(default=0, ge=0)
    attempt_log: bool = Field(
        default=True, description="one record per HTTP attempt on the attempts topic"
    )

    @field_validator("retry_delays", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        """``RETURNHOOK_RETRY_DELAYS=1,5,15`` reads as a list."""
        if isinstance(value, str):
            text = value.strip().strip("[]")
            return tuple(float(v) for v in text.split(",") if v.strip()) if text else ()
        return value

    @field_validator("egress_allow", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        return tuple(parse_allow(value)) if isinstance(value, str) else value

    @field_validator("egress_allow")
    @classmethod
    def _cidr_or_host(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for entry in value:
            if "/" in entry:
                try:
                    ipaddress.ip_network(entry, strict=False)
                except ValueError:
                    raise ValueError(f"{entry!r} is not a CIDR") from None
        return value

    @field_validator("retry_delays")
    @classmethod
    def _non_negative(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if any(v < 0 for v in value):
            raise ValueError("retry delays must not be negative")
        return value

    @model_validator(mode="after")
    def _drain_within_rebalance(self) -> WorkerConfig:
        """The drain and faust's own revoke work must both fit in the rebalance timeout.

        After our drain, faust still commits, flushes the producer, stops its fetchers and
        rejoins the group; a member that takes longer than the rebalance timeout in all is
        evicted, and its partitions' work is done twice. Half of it is left for faust.
        """
        most = self.rebalance_timeout_s * DRAIN_SHARE_OF_REBALANCE
        if self.drain_timeout_s > most:
            raise ValueError(
                f"drain_timeout_s ({self.drain_timeout_s:g}) may be at most half of "
                f"rebalance_timeout_s ({self.rebalance_timeout_s:g}), i.e. {most:g} s: after "
                "the drain, faust still commits, flushes the producer, stops its fetchers and "
                "rejoins the group within the same rebalance timeout, or the worker is evicted"
            )
        return self


class ConfigFileError(ValueError):
    pass


def load_config(flags: dict[str, Any], config_file: Path | None = None) -> WorkerConfig:
    """The effective configuration; ``flags`` are the CLI's (None values already dropped)."""
    path = config_file or (
        Path(os.environ[CONFIG_FILE_ENV]) if os.environ.get(CONFIG_FILE_ENV) else None
    )
    if path is None:
        return WorkerConfig(**flags)
    if not path.is_file():
        raise ConfigFileError(f"config file {path} does not exist")
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigFileError(f"config file {path} is not valid YAML: {exc}") from None
    if document is not None and not isinstance(document, dict):
        kind = type(document).__name__
        raise ConfigFileError(f"config file {path} must hold a mapping of options, not a {kind}")

    class FromFile(WorkerConfig):
        model_config = SettingsConfigDict(**{**WorkerConfig.model_config, "yaml_file": path})

        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (init_settings, env_settings, YamlConfigSettingsSource(settings_cls))

    loaded = FromFile(**flags)
    return WorkerConfig.model_construct(**loaded.model_dump())
