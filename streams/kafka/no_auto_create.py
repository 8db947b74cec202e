"""Our Kafka clients never create topics by asking for them.

aiokafka 0.14 sends every metadata request for named topics with ``allow_auto_topic_creation``
set, and has no option to turn it off: on a broker with auto-creation on (Tansu always, many
Kafka defaults), producing to a topic that ``topics apply`` has not made yet creates it with the
broker's partition count and no compaction. Commands check their topics first
(``streams.kafka.topic_admin.verify_topics``); this makes the clients themselves ask without
creating too, so a topic deleted in between is an error instead of a wrong new topic.
"""

from __future__ import annotations

import aiokafka.client
from aiokafka.protocol.metadata import MetadataRequest


class _MetadataRequestNoCreate(MetadataRequest):
    def __init__(
        self, topics: list[str] | None = None, allow_auto_topic_creation: bool | None = False
    ) -> None:
        super().__init__(topics, allow_auto_topic_creation)


def forbid_topic_auto_creation() -> None:
    """Process-wide for aiokafka's client (faust's producer and consumer use it); idempotent."""
    aiokafka.client.MetadataRequest = _MetadataRequestNoCreate  # type: ignore[misc]
