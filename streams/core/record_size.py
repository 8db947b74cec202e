"""How large a record is on the wire, and the most a topic will take: checked before sending.

A record over the producer's ``max_request_size`` is refused by the client before it is sent
(faust raises ``ProducerSendError``); one over the topic's ``max.message.bytes`` is refused by
the broker. Either way the work that produced it cannot be acknowledged, and the partition's
next owner meets the same record: so every record is measured first. Pure.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

from pydantic import BaseModel

#: Kafka's default ``max.message.bytes`` for a topic that does not set it (1 MiB + 12).
KAFKA_DEFAULT_MAX_MESSAGE_BYTES = 1_048_588
#: faust's default ``producer_max_request_size``.
FAUST_DEFAULT_MAX_REQUEST_SIZE = 1_000_000
#: A record batch's header (61 bytes) plus a record's largest varint overhead (21 bytes): the
#: same upper bound aiokafka applies before it refuses a record.
_BATCH_OVERHEAD = 61 + 21
_VARINT = 5  # the longest varint that a length below 2**31 takes

#: A Kafka key longer than this is replaced by its digest on our own output records (the key
#: only picks the partition there; the whole key stays in the record's value where it fits).
MAX_KEY_BYTES = 16 * 1024


def record_size(
    key: bytes | None,
    value: bytes | None,
    headers: Iterable[tuple[str, bytes | None]] = (),
) -> int:
    """An upper bound of the record's size in a batch of one, as aiokafka estimates it."""
    size = _BATCH_OVERHEAD + 2 * _VARINT + len(key or b"") + len(value or b"") + _VARINT
    for name, header_value in headers:
        size += 2 * _VARINT + len(name.encode("utf-8")) + len(header_value or b"")
    return size


def record_limit(max_request_size: int, topic_configs: Mapping[str, str]) -> int:
    """The largest record that both the producer and the topic take."""
    topic_max = int(topic_configs.get("max.message.bytes", KAFKA_DEFAULT_MAX_MESSAGE_BYTES))
    return min(max_request_size, topic_max)


def value_budget(
    limit: int, key: bytes | None, headers: Iterable[tuple[str, bytes | None]] = ()
) -> int:
    """How many bytes a value may have in a record with this key and these headers."""
    return limit - record_size(key, b"", headers)


def headers_overhead(headers: Iterable[tuple[str, bytes | None]]) -> int:
    """What these headers add to a record: subtract it from a limit checked without them."""
    return record_size(None, None, headers) - record_size(None, None)


def output_key(key: bytes | None) -> bytes | None:
    """The key for one of our own records: the input's, unless it is too long to carry."""
    if key is None or len(key) <= MAX_KEY_BYTES:
        return key
    return b"sha256:" + hashlib.sha256(key).hexdigest().encode()


def encode_record(record: BaseModel) -> bytes:
    """An output record's value as it is sent (JSON, camelCase): what the limits measure.

    pydantic's serializer writes the JSON bytes itself (no dict of the record in between).
    """
    return record.__pydantic_serializer__.to_json(record, by_alias=True)
