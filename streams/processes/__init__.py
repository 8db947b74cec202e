"""Child processes: start, watch and stop them (the broker, workers, receivers), free ports,
worker readiness. Used by the embedded broker, the demo, the bench and the tests.

May import: the standard library only.
"""
