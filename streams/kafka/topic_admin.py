"""Make the cluster's topics match the catalog: create what is missing, flag what differs.

Existing topics are never altered: adding partitions re-hashes keys to other partitions (which
breaks per-order ordering), so a partition mismatch is reported for a human to decide.
"""

from __future__ import annotations

import asyncio
from typing import Literal

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code
from pydantic import BaseModel, ConfigDict

from streams.kafka.connection import Connectable, connection_of
from streams.kafka.topics import TopicCatalog, TopicSpec

Action = Literal["created", "exists", "mismatch"]


class KafkaUnreachableError(ConnectionError):
    """The bootstrap servers did not answer in time."""


class TopicAdminError(RuntimeError):
    """The broker refused to create a topic."""


class TopicsNotReadyError(RuntimeError):
    """Topics missing or unlike topics.yaml; one line that says what to run."""

    def __init__(self, bootstrap: str, problems: list[str]) -> None:
        super().__init__(
            f"{'; '.join(problems)} on {bootstrap}: run `returnhook topics apply` first"
        )
        self.problems = problems


#: Configs that change what a topic is; others (retention) may be tuned on the cluster.
CHECKED_CONFIGS = ("cleanup.policy",)


class TopicReport(BaseModel):
    """What `apply_topics` did (or found) for one topic."""

    model_config = ConfigDict(frozen=True)

    name: str
    role: str
    action: Action
    detail: str


async def apply_topics(
    target: Connectable,
    catalog: TopicCatalog,
    *,
    timeout: float = 12.0,
) -> list[TopicReport]:
    """Create the catalog's missing topics and check existing ones, in catalog order.

    `timeout` bounds the whole call, so an unreachable or silent broker fails instead of hanging.
    """
    connection = connection_of(target)
    bootstrap = connection.bootstrap
    admin = AIOKafkaAdminClient(
        **connection.aiokafka_options(),
        client_id="returnhook-topic-admin",
        request_timeout_ms=max(1000, int(timeout * 1000)),
    )
    try:
        async with asyncio.timeout(timeout):
            try:
                await admin.start()
                # Metadata for *all* topics: asking for named topics auto-creates them on
                # brokers with auto-creation on (Tansu always), with the wrong partition count.
                existing = {t["topic"]: len(t["partitions"]) for t in await admin.describe_topics()}
            except KafkaError as exc:
                raise KafkaUnreachableError(f"cannot reach Kafka at {bootstrap}: {exc}") from exc
            return await _apply(admin, catalog, existing)
    except TimeoutError:
        raise KafkaUnreachableError(
            f"cannot reach Kafka at {bootstrap}: no answer within {timeout:g} s"
        ) from None
    finally:
        await admin.close()


async def verify_topics(
    target: Connectable,
    catalog: TopicCatalog,
    roles: list[str] | None = None,
    *,
    timeout: float = 12.0,
) -> None:
    """Raises TopicsNotReadyError unless each topic exists as topics.yaml says.

    Checked: existence, partition count and ``cleanup.policy``. Nothing is created, and the
    metadata is read for all topics, never by name (a named request may auto-create).
    """
    specs = catalog.by_role()
    wanted = {role: specs[role] for role in (roles or list(specs))}
    connection = connection_of(target)
    bootstrap = connection.bootstrap
    admin = AIOKafkaAdminClient(
        **connection.aiokafka_options(),
        client_id="returnhook-topic-check",
        request_timeout_ms=max(1000, int(timeout * 1000)),
    )
    try:
        async with asyncio.timeout(timeout):
            try:
                await admin.start()
                existing = {t["topic"]: len(t["partitions"]) for t in await admin.describe_topics()}
                present = [spec for spec in wanted.values() if spec.name in existing]
                configs = await _topic_configs(admin, present)
            except KafkaError as exc:
                raise KafkaUnreachableError(f"cannot reach Kafka at {bootstrap}: {exc}") from exc
    except TimeoutError:
        raise KafkaUnreachableError(
            f"cannot reach Kafka at {bootstrap}: no answer within {timeout:g} s"
        ) from None
    finally:
        await admin.close()
    problems = topic_problems(wanted, existing, configs)
    if problems:
        raise TopicsNotReadyError(bootstrap, problems)


def topic_problems(
    wanted: dict[str, TopicSpec],
    partitions: dict[str, int],
    configs: dict[str, dict[str, str]],
) -> list[str]:
    """What differs from the catalog, one phrase per topic (pure)."""
    problems = []
    for role, spec in wanted.items():
        if spec.name not in partitions:
            problems.append(f"topic {spec.name} ({role}) does not exist")
            continue
        if partitions[spec.name] != spec.partitions:
            problems.append(
                f"topic {spec.name} ({role}) has {partitions[spec.name]} partition(s), "
                f"topics.yaml wants {spec.partitions}"
            )
        for name in CHECKED_CONFIGS:
            want = spec.configs.get(name, "delete")
            have = configs.get(spec.name, {}).get(name, "delete")
            if have != want:
                problems.append(f"topic {spec.name} ({role}) has {name}={have}, wants {want}")
    return problems


async def _topic_configs(
    admin: AIOKafkaAdminClient, specs: list[TopicSpec]
) -> dict[str, dict[str, str]]:
    if not specs:
        return {}
    resources = [ConfigResource(ConfigResourceType.TOPIC, spec.name) for spec in specs]
    found: dict[str, dict[str, str]] = {}
    for response in await admin.describe_configs(resources):
        for resource in response.to_object()["resources"]:
            found[resource["resource_name"]] = {
                entry["config_names"]: entry["config_value"]
                for entry in resource["config_entries"]
                if entry["config_value"] is not None
            }
    return found


async def _apply(
    admin: AIOKafkaAdminClient, catalog: TopicCatalog, existing: dict[str, int]
) -> list[TopicReport]:
    reports: dict[str, TopicReport] = {}
    missing: dict[str, tuple[str, TopicSpec]] = {}
    for role, spec in catalog.by_role().items():
        if spec.name in existing:
            reports[role] = _check(role, spec, existing[spec.name])
        else:
            missing[spec.name] = (role, spec)
    if missing:
        response = await admin.create_topics(
            [
                NewTopic(
                    spec.name,
                    spec.partitions,
                    spec.replication_factor,
                    topic_configs=dict(spec.configs),
                )
                for _, spec in missing.values()
            ]
        )
        for name, code, message in _topic_errors(response):
            role, spec = missing[name]
            if code == 0:
                reports[role] = TopicReport(
                    name=name,
                    role=role,
                    action="created",
                    detail=f"{_partitions(spec.partitions)}, replication {spec.replication_factor}",
                )
            elif for_code(code) is TopicAlreadyExistsError:
                # Someone created it between our metadata read and our request.
                reports[role] = TopicReport(
                    name=name, role=role, action="exists", detail="created concurrently"
                )
            else:
                error = for_code(code).__name__
                raise TopicAdminError(f"cannot create topic {name} ({role}): {error} {message}")
    return [reports[role] for role in catalog.by_role() if role in reports]


def _check(role: str, spec: TopicSpec, partitions: int) -> TopicReport:
    if partitions != spec.partitions:
        return TopicReport(
            name=spec.name,
            role=role,
            action="mismatch",
            detail=f"has {partitions} partitions, catalog wants {spec.partitions} "
            "(not changed: adding partitions moves keys)",
        )
    return TopicReport(name=spec.name, role=role, action="exists", detail=_partitions(partitions))


def _partitions(count: int) -> str:
    return f"{count} partition" + ("" if count == 1 else "s")


def _topic_errors(response: object) -> list[tuple[str, int, str | None]]:
    """(topic, error code, message) from any CreateTopics response version."""
    rows = response.to_object()["topic_errors"]  # type: ignore[attr-defined]
    return [(row["topic"], row["error_code"], row.get("error_message")) for row in rows]
