"""The runner: turns events into runs (triggers) and into resumptions (waits, invokes, cancels)."""
