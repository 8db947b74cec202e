"""The pure core: the step as functions over pydantic models, with no I/O.

Decoding input bytes, step scope and connector resolution, building the request, reading the
answer, the outcome table (SPEC §6), patching, stable ids, dead-letter records and the step
sequence (``workflow``, which takes the HTTP call and the clock as arguments), progress
records (finished offsets beyond the commit point, waiting retries).

May import: ``models`` and the standard library. Never faust, aiokafka or aiohttp.
"""
