"""Observability: logging, tracing and metrics set-up."""
