"""Unit tests' shared fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from headrace.adapters.sqlite.database import Database
from headrace.adapters.sqlite.stores import SqliteStores


@pytest.fixture
def stores() -> Iterator[SqliteStores]:
    """SQLite stores in memory, closed after the test."""
    db = Database(":memory:")
    yield SqliteStores(db)
    db.close()
