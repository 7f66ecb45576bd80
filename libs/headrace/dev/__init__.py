"""`headrace dev`: the four services in one process on the embedded adapters."""
