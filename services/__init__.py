"""The four services: ingest, runner, scheduler, executor. Each is a thin package that wires
the domain (headrace.*) to the ports and runs a consume loop."""
