"""The worker shell: the faust app and agent, keyed lanes, the offset ledger, recovery after
an assignment, the tenant settings cache,
the progress book (finished work beyond the commit point).

May import: ``streams.ops``, ``streams.http``, ``streams.kafka``, ``streams.processes``,
``streams.core``, ``models``.
"""
