"""``returnhook check``: is this cluster ready for the workers, as configured?

Each row is one fact with ok or not: the brokers answer, the security handshake succeeds, every
topic of topics.yaml exists with its partitions and cleanup policy, the settings topic reads, and
where the workers' consumer group stands (state, members, lag). A group that does not exist yet
is fine (no worker ran); everything else that is off fails the check.
"""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from pydantic import BaseModel, ConfigDict

from streams.kafka.connection import KafkaConnection
from streams.kafka.probe import explain, probe
from streams.kafka.settings_reader import read_settings_topic
from streams.kafka.topics import TopicCatalog, TopicSpec


class CheckRow(BaseModel):
    model_config = ConfigDict(frozen=True)

    item: str
    ok: bool
    detail: str


def topic_row(role: str, spec: TopicSpec, partitions: int | None, cleanup: str | None) -> CheckRow:
    """Pure: one topic as found (``partitions`` None = missing) against the catalog."""
    item = f"topic {spec.name} ({role})"
    if partitions is None:
        return CheckRow(item=item, ok=False, detail="missing (run `returnhook topics apply`)")
    problems = []
    if partitions != spec.partitions:
        problems.append(f"{partitions} partitions, topics.yaml wants {spec.partitions}")
    wanted = str(spec.configs.get("cleanup.policy", "delete"))
    if cleanup is not None and cleanup != wanted:
        problems.append(f"cleanup.policy={cleanup}, topics.yaml wants {wanted}")
    if problems:
        return CheckRow(item=item, ok=False, detail="; ".join(problems))
    policy = f", cleanup.policy={cleanup}" if cleanup is not None else ""
    return CheckRow(item=item, ok=True, detail=f"{partitions} partitions{policy}")


async def check_cluster(
    connection: KafkaConnection, catalog: TopicCatalog, group_id: str, *, timeout: float = 10.0
) -> list[CheckRow]:
    rows: list[CheckRow] = []
    probes = await probe(connection, timeout)
    for result in probes:
        rows.append(
            CheckRow(
                item=f"broker {result.server} reachable",
                ok=result.reachable,
                detail="TCP connect" if result.reachable else result.error or "",
            )
        )
        if result.reachable:
            rows.append(
                CheckRow(
                    item=f"broker {result.server} security handshake",
                    ok=result.handshake,
                    detail=connection.describe() if result.handshake else result.error or "",
                )
            )
    if not any(r.handshake for r in probes):
        return rows
    admin = AIOKafkaAdminClient(
        **connection.aiokafka_options(),
        client_id="returnhook-check",
        request_timeout_ms=int(timeout * 1000),
    )
    try:
        async with asyncio.timeout(timeout * 3):
            await admin.start()
            rows += await _topics(admin, catalog)
            rows.append(await _settings(connection, catalog, timeout))
            rows.append(await _group(admin, connection, catalog, group_id))
    except Exception as exc:  # a broker that answered the probe but not the admin requests
        rows.append(CheckRow(item="cluster metadata", ok=False, detail=explain(exc, connection)))
    finally:
        await admin.close()
    return rows


async def _topics(admin: AIOKafkaAdminClient, catalog: TopicCatalog) -> list[CheckRow]:
    # All topics' metadata: naming one auto-creates it on brokers that do that.
    existing = {t["topic"]: len(t["partitions"]) for t in await admin.describe_topics()}
    present = [spec.name for spec in catalog.by_role().values() if spec.name in existing]
    policies: dict[str, str] = {}
    if present:
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name) for name in present]
        )
        for response in responses:
            for resource in response.to_object()["resources"]:
                entries = {e["config_names"]: e["config_value"] for e in resource["config_entries"]}
                # A broker that lists no value uses Kafka's default.
                policies[resource["resource_name"]] = entries.get("cleanup.policy") or "delete"
    return [
        topic_row(role, spec, existing.get(spec.name), policies.get(spec.name))
        for role, spec in catalog.by_role().items()
    ]


async def _settings(connection: KafkaConnection, catalog: TopicCatalog, timeout: float) -> CheckRow:
    name = catalog.settings.name
    item = f"settings topic {name} readable"
    try:
        tenants = await read_settings_topic(connection, name, timeout=timeout)
    except Exception as exc:
        return CheckRow(item=item, ok=False, detail=explain(exc, connection))
    return CheckRow(item=item, ok=True, detail=f"{len(tenants)} tenant(s) with settings")


async def _group(
    admin: AIOKafkaAdminClient,
    connection: KafkaConnection,
    catalog: TopicCatalog,
    group_id: str,
) -> CheckRow:
    item = f"consumer group {group_id}"
    described = await admin.describe_consumer_groups([group_id])
    groups = [g for response in described for g in response.to_object()["groups"]]
    group = groups[0] if groups else {"state": "Dead", "members": []}
    state, members = group["state"] or "Dead", len(group["members"])
    if state in ("Dead", "Empty") and members == 0:
        detail = f"{state}: no worker is running"
    else:
        detail = f"{state}, {members} member(s)"
    spec = catalog.input
    tps = [TopicPartition(spec.name, p) for p in range(spec.partitions)]
    # Partitions are named: some brokers cannot list all of a group's offsets.
    committed = await admin.list_consumer_group_offsets(group_id, partitions=tps)
    offsets = {tp: meta.offset for tp, meta in committed.items() if meta.offset >= 0}
    if not offsets:
        return CheckRow(item=item, ok=True, detail=f"{detail}; nothing committed yet")
    consumer = AIOKafkaConsumer(**connection.aiokafka_options(), enable_auto_commit=False)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(list(offsets))
    finally:
        await consumer.stop()
    lag = sum(max(0, ends[tp] - offset) for tp, offset in offsets.items())
    return CheckRow(item=item, ok=True, detail=f"{detail}; lag {lag} on {spec.name}")
