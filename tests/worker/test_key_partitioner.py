import random

from aiokafka.partitioner import DefaultPartitioner

from streams.worker.key_partitioner import KeyPartitioner


def test_the_same_partitions_as_aiokafkas_default_partitioner() -> None:
    ours, theirs = KeyPartitioner(max_keys=50), DefaultPartitioner()
    rng = random.Random(7)
    for _ in range(2000):
        key = rng.randbytes(rng.randrange(0, 40))
        partitions = list(range(rng.choice([1, 3, 12, 50])))
        assert ours(key, partitions, partitions) == theirs(key, partitions, partitions)
        assert ours(key, partitions, partitions) == theirs(key, partitions, partitions)  # cached


def test_no_key_picks_an_available_partition() -> None:
    assert KeyPartitioner()(None, [0, 1, 2], [2]) == 2
    assert KeyPartitioner()(None, [0, 1, 2], []) in (0, 1, 2)
