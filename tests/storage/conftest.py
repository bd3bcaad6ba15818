"""Storage tests run twice: on SQLite (the default) and on a real PostgreSQL (production).

The PostgreSQL server is a throwaway cluster in a temp dir, listening on a Unix socket only.
"""

from __future__ import annotations

import pytest

from bench import services
from storage.db import get_engine, upgrade
from storage.settings import load_settings


@pytest.fixture(scope="session")
def postgres_server():
    try:
        with services.postgres_server() as server:
            yield server
    except services.ServiceError as exc:
        pytest.fail(str(exc))


@pytest.fixture
def postgres_url(postgres_server):
    """A fresh, empty database for one test."""
    url = services.new_database(postgres_server)
    yield url
    get_engine(url).dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request, data_env, monkeypatch):
    if request.param == "postgresql":
        monkeypatch.setenv("DATABASE_URL", request.getfixturevalue("postgres_url"))
    s = load_settings()
    upgrade(s.db_url)
    return s
