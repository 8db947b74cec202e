"""Tenant settings files: read, validate, publish; nothing is published unless all is valid."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import yaml
from aiokafka import AIOKafkaProducer
from pydantic import ValidationError

from models.settings import TenantSettings
from models.settings_keys import check_settings_document
from streams.kafka.connection import Connectable, connection_of


class SettingsFileError(ValueError):
    """Carries one line per problem, each naming the field path, for the CLI to print."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        super().__init__(f"{path}: " + "; ".join(problems))
        self.path = path
        self.problems = problems


def load_settings_file(path: Path) -> list[TenantSettings]:
    """A file holds one tenant's settings, a list of them, or ``{tenants: [...]}``."""
    return read_settings_file(path)[0]


def read_settings_file(path: Path) -> tuple[list[TenantSettings], list[str]]:
    """The tenants and the warnings (parts returnhook does not use); typos are errors."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsFileError(path, [f"cannot read the file: {exc.strerror or exc}"]) from None
    try:
        data: Any = orjson.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (orjson.JSONDecodeError, yaml.YAMLError) as exc:
        raise SettingsFileError(path, [f"not valid YAML/JSON: {exc}"]) from None
    if isinstance(data, dict) and set(data) == {"tenants"}:
        data = data["tenants"]
    documents = data if isinstance(data, list) else [data]
    problems: list[str] = []
    warnings: list[str] = []
    tenants: list[TenantSettings] = []
    for index, document in enumerate(documents):
        prefix = f"[{index}]." if isinstance(data, list) else ""
        if not isinstance(document, dict):
            problems.append(f"{prefix or '(root)'}: expected a mapping of tenant settings")
            continue
        check = check_settings_document(document, prefix)
        problems.extend(check.errors)
        warnings.extend(check.warnings)
        try:
            tenants.append(TenantSettings.model_validate(check.document))
        except ValidationError as exc:
            for error in exc.errors():
                where = prefix + (".".join(str(p) for p in error["loc"]) or "(root)")
                if error["type"] == "extra_forbidden" and where in check.typo_paths:
                    continue  # reported above, with a suggestion
                problems.append(f"{where}: {error['msg']}")
    seen: set[str] = set()
    for tenant in tenants:
        if tenant.tenant_id in seen:
            problems.append(f"tenantId {tenant.tenant_id!r} appears twice")
        seen.add(tenant.tenant_id)
    if not documents:
        problems.append("the file holds no tenant settings")
    if problems:
        raise SettingsFileError(path, problems)
    return tenants, warnings


def settings_record(settings: TenantSettings) -> tuple[bytes, bytes]:
    """Key and value as the worker's GlobalTable reads them."""
    value = settings.model_dump(mode="json", by_alias=True, exclude_none=True)
    return settings.tenant_id.encode(), orjson.dumps(value)


async def publish_settings(target: Connectable, topic: str, tenants: list[TenantSettings]) -> None:
    """One record per send, awaited: the test broker misreports end offsets after batches."""
    producer = AIOKafkaProducer(
        **connection_of(target).producer_options(),
        acks="all",
        enable_idempotence=False,  # the embedded broker has no InitProducerId
        request_timeout_ms=15000,
    )
    try:
        await producer.start()
        for tenant in tenants:
            key, value = settings_record(tenant)
            await producer.send_and_wait(topic, value=value, key=key)
    finally:
        await producer.stop()
