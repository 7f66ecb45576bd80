"""In-process adapters: the log of `headrace dev`, with Kafka's semantics in one process."""
