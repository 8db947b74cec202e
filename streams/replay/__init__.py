"""``returnhook replay``: the step again for a time window of the input topic, without a group.

``window`` turns the operator's times into a window, ``run`` reads and re-runs it, ``report``
holds what it found. May import ``streams.worker`` and everything below it.
"""
