"""Engines, sessions and schema migrations (Alembic) for the one SQL store.

SQLite by default; any SQLAlchemy URL (PostgreSQL in production) through `database_url`.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from storage.files import private_dir

MIGRATIONS = Path(__file__).parent / "migrations"


@lru_cache(maxsize=8)
def get_engine(url: str) -> Engine:
    database = Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None
    if database is not None:
        private_dir(database.parent)
    engine = create_engine(url, pool_pre_ping=True)  # a restarted PostgreSQL: reconnect, do not fail the next query
    if engine.dialect.name == "sqlite":
        # SQLite ignores foreign keys unless asked; WAL lets the web app read while a worker writes.
        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.close()
            for path in (database, database.with_name(database.name + "-wal"), database.with_name(database.name + "-shm")):
                if path.exists():
                    path.chmod(0o600)  # the database (and its write-ahead log) for the service's user alone

    return engine


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """A session that commits on success and rolls back everything on any error."""
    session = sessionmaker(get_engine(url), expire_on_commit=False)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["url"] = url
    return cfg


@contextmanager
def _one_migrator(url: str, conn) -> Iterator[None]:
    """One process migrates at a time (workers starting together on a new database): a file lock
    beside a SQLite file, an advisory lock (freed at commit) on PostgreSQL."""
    if url.startswith("sqlite:///"):
        lock = Path(url.removeprefix("sqlite:///")).with_suffix(".migrating")
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)
        return
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(2509196310)"))  # the paper's arXiv number
    yield


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at `url` to the newest schema (creates it if missing)."""
    with get_engine(url).begin() as conn, _one_migrator(url, conn):
        cfg = alembic_config(url)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


@lru_cache(maxsize=4)
def ensure_schema(url: str) -> None:
    """Creates or upgrades the schema, once per process and URL."""
    upgrade(url)
