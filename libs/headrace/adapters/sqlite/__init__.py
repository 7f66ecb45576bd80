"""SQLite adapters: the embedded stores (and the durable storage of the in-process log) of
`headrace dev`."""
