"""confluent-kafka (librdkafka) as the other client in the tests: a producer and a reader we
did not write. Reading uses ``assign()`` from offset 0, not a group (a librdkafka group consumer
is slow to join on the embedded broker)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, Producer, TopicPartition

Headers = Sequence[tuple[str, bytes]]


def produce(
    config: Mapping[str, str],
    topic: str,
    records: Sequence[tuple[bytes, bytes, Headers]],
    *,
    compression: str = "none",
    timeout: float = 20.0,
) -> None:
    """Sends (key, value, headers) records, each batch compressed with ``compression``."""
    producer = Producer({**config, "compression.type": compression, "linger.ms": 5, "acks": "all"})
    errors: list[str] = []

    def delivered(error: object, message: Message) -> None:
        if error is not None:
            errors.append(str(error))

    for key, value, headers in records:
        producer.produce(topic, value=value, key=key, headers=list(headers), on_delivery=delivered)
    left = producer.flush(timeout)
    assert left == 0 and not errors, f"librdkafka could not deliver: {left} left, {errors}"


def read(
    config: Mapping[str, str],
    topic: str,
    partitions: int,
    *,
    min_count: int,
    timeout: float = 30.0,
) -> list[Message]:
    """Every record of ``topic`` from offset 0 until ``min_count`` are in (or the timeout)."""
    consumer = Consumer(
        {
            **{k: v for k, v in config.items() if k != "compression.type"},
            "group.id": "unused-with-assign",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 100,
        }
    )
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    messages: list[Message] = []
    deadline = time.monotonic() + timeout
    try:
        while len(messages) < min_count and time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is None:
                continue
            assert message.error() is None, message.error()
            messages.append(message)
    finally:
        consumer.close()
    return messages


def header(message: Message, name: str) -> bytes | None:
    return next((v for k, v in (message.headers() or []) if k == name), None)
