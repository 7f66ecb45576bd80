"""Ingest: the Event API, app sync and the read APIs; it validates and publishes to `events`."""
