"""Reading the compacted settings topic back, for ``settings show``/``list`` and the check."""

from __future__ import annotations

from streams.kafka.connection import Connectable
from streams.kafka.topic_reader import read_whole_topic


async def read_settings_topic(
    target: Connectable, topic: str, *, timeout: float = 15.0, idle: float = 1.0
) -> dict[str, bytes]:
    """The last value per tenant (deletes drop the tenant), read from the beginning."""
    latest: dict[str, bytes] = {}
    for record in await read_whole_topic(target, topic, timeout=timeout, idle=idle):
        if record.key is None:
            continue
        tenant = record.key.decode("utf-8", "replace")
        if record.value is None:
            latest.pop(tenant, None)
        else:
            latest[tenant] = record.value
    return latest
