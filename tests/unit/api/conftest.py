from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from skiff.api.registry import Route
from skiff.testing.apiserver import ApiServer, serve_api


@pytest.fixture
def extra_routes() -> list[Route]:
    return []


@pytest.fixture
def server(tmp_path: Path, extra_routes: list[Route]) -> Iterator[ApiServer]:
    with serve_api(str(tmp_path / "api.sock"), extra_routes) as srv:
        yield srv
