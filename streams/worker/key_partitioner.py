"""aiokafka's default partitioner (murmur2, as the Java client), remembering recent keys' hashes.

murmur2 is pure Python in aiokafka, and every output of one event (its attempts, its patch, its
order-event) has the same key: the hash is computed once per event instead of once per record.
Same partitions as the default, so downstream consumers see no difference.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from aiokafka.partitioner import murmur2

#: Keys remembered; the cache starts over when it is full (the keys of a burst are all new).
MAX_KEYS = 4096


class KeyPartitioner:
    def __init__(self, max_keys: int = MAX_KEYS) -> None:
        self.max_keys = max_keys
        self._hashes: dict[bytes, int] = {}

    def __call__(
        self, key: bytes | None, all_partitions: Sequence[int], available: Sequence[int]
    ) -> int:
        if key is None:
            return random.choice(available or all_partitions)
        hashes = self._hashes
        hashed = hashes.get(key)
        if hashed is None:
            if len(hashes) >= self.max_keys:
                hashes.clear()
            hashed = hashes[key] = murmur2(key) & 0x7FFFFFFF
        return all_partitions[hashed % len(all_partitions)]
