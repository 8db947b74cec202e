"""Kafka plumbing: the connection (TLS, SASL, compression) every client is built from and its
probe, the topic catalog (topics.yaml), topic admin, the cluster check, the settings topic
(publish and read), the embedded broker for local runs and tests, the progress topic reader.

May import: ``streams.processes``, ``streams.core``, ``models``, aiokafka (faust only to build
its credentials).
"""
