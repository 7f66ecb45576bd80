from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from headrace.testing.dev import DevHandle, start_dev


@pytest.fixture
async def dev(tmp_path: Path) -> AsyncIterator[DevHandle]:
    handle = await start_dev(tmp_path / "state")
    yield handle
    await handle.stop()
