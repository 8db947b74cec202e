"""Operations: worker configuration, metrics, log format, redaction of secrets, the console.

May import: ``streams.http``, ``streams.kafka``, ``streams.processes``, ``streams.core``,
``models``.
"""
