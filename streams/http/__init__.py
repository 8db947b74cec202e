"""The HTTP shell: the webhook client with its retries, the egress policy, signing.

May import: ``streams.core``, ``models``, aiohttp.
"""
