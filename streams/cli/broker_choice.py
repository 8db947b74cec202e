"""A configured Kafka, or the embedded one when none is configured (local runs, the demo)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

from streams.kafka.topic_admin import apply_topics
from streams.kafka.topics import TopicCatalog
from streams.ops.console import console

stderr = console(stderr=True)


@contextlib.contextmanager
def broker_or_embedded(broker: str | None, catalog: TopicCatalog) -> Iterator[str]:
    """Yields a bootstrap; an embedded broker gets its topics created and is stopped after."""
    if broker:
        yield broker
        return
    from streams.kafka.embedded_broker import EmbeddedBroker

    with EmbeddedBroker() as embedded:
        stderr.print(
            f"[yellow]No broker configured (--broker / RETURNHOOK_BROKER): started the embedded "
            f"broker at {embedded.bootstrap} (pid {embedded.pid}); it stops on exit.[/]"
        )
        asyncio.run(apply_topics(embedded.bootstrap, catalog))
        yield embedded.bootstrap
