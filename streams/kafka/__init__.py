"""Kafka plumbing: the topic catalog (topics.yaml), topic admin, the settings topic (publish
and read), the embedded broker for local runs and tests, the progress topic reader.

May import: ``streams.processes``, ``streams.core``, ``models``, aiokafka.
"""
