"""Ports: the small interfaces the services talk through, each with documented guarantees.

Adapters: `headrace.adapters.inproc` / `headrace.adapters.sqlite` (embedded, `headrace dev`) and the
Kafka / Cassandra adapters (distributed mode). One contract suite in tests/contract runs over both.
"""
