"""Typed records on the topics, and how they are keyed (see topics.py)."""
