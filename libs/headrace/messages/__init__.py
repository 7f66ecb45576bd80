"""Typed records on the three topics. Every record is keyed by account id (see topics.py)."""
