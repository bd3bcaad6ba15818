"""Backup and restore: a consistent snapshot of the store while the service runs, checked on the way back.

`backup` writes, into a new folder: the database (SQLite's online backup API, or `pg_dump`), the
stored audio and the registry's checkpoints under the data dir, and `manifest.json` with the sha256
of every file. `restore` checks every file against the manifest, refuses a database that already
holds rows, and puts all back under the (new) data dir; stored paths are rewritten to it.
"""

from __future__ import annotations

import glob
import json
import shutil
import sqlite3
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select, text

from storage.db import ensure_schema, get_engine, session_scope
from storage.files import file_digests, private_dir, sha256_file
from storage.schema import Base
from storage.settings import Settings

MANIFEST = "manifest.json"
FOLDERS = ("audio", "students", "teachers")  # under the data dir: what the rows point at


class BackupError(ValueError):
    """A backup or restore that cannot be done; the message is meant for the operator."""


def _pg_tool(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)),
                                       None)
    if not found:
        raise BackupError(f"{name} is not installed (apt-get install postgresql-client)")
    return found


def _libpq_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def _sqlite_path(settings: Settings) -> Path | None:
    url = settings.db_url
    return Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None


def backup(settings: Settings, target: Path) -> dict:
    """A snapshot into `target` (a new or empty folder); returns the manifest."""
    if target.exists() and any(target.iterdir()):
        raise BackupError(f"{target} is not empty: a backup goes into a new folder")
    ensure_schema(settings.db_url)
    private_dir(target)
    database = _sqlite_path(settings)
    if database is not None:
        with sqlite3.connect(database) as source, sqlite3.connect(target / "speechsum.db") as copy:
            source.backup(copy)  # a consistent copy while others write
    else:
        subprocess.run([_pg_tool("pg_dump"), "--format=custom", "--no-owner", "--file", str(target / "database.dump"),
                        _libpq_url(settings.db_url)], check=True, capture_output=True)
    for folder in FOLDERS:
        if (settings.data_dir / folder).is_dir():
            shutil.copytree(settings.data_dir / folder, target / folder)
    files = file_digests(target)
    manifest = {"created": datetime.now(UTC).isoformat(), "data_dir": str(settings.data_dir),
                "database": "sqlite" if database else "postgresql", "files": files}
    (target / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return manifest


def _rows(settings: Settings) -> int:
    ensure_schema(settings.db_url)
    with session_scope(settings.db_url) as session:
        return sum(session.scalar(select(func.count()).select_from(t)) for t in Base.metadata.sorted_tables)


def restore(settings: Settings, source: Path) -> dict:
    """Puts a backup back into an empty store; returns its manifest. Nothing is written unless every
    file matches the manifest and the database holds no rows."""
    manifest = json.loads((source / MANIFEST).read_text()) if (source / MANIFEST).exists() else None
    if manifest is None:
        raise BackupError(f"{source} has no {MANIFEST}: not a speechsum backup")
    for name, digest in manifest["files"].items():
        if not (source / name).is_file() or sha256_file(source / name) != digest:
            raise BackupError(f"{source / name} does not match the manifest: the backup is damaged")
    if _rows(settings):
        raise BackupError("the database already holds rows: restore into an empty store")
    database = _sqlite_path(settings)
    if (manifest["database"] == "sqlite") != (database is not None):
        raise BackupError(f"a {manifest['database']} backup cannot be restored into {settings.db_url.split(':')[0]}")
    get_engine(settings.db_url).dispose()
    if database is not None:
        for stale in database.parent.glob(database.name + "*"):
            stale.unlink()
        shutil.copyfile(source / "speechsum.db", database)
    else:
        subprocess.run([_pg_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", "--dbname",
                        _libpq_url(settings.db_url), str(source / "database.dump")], check=True, capture_output=True)
    for folder in FOLDERS:
        if (source / folder).is_dir():
            shutil.copytree(source / folder, private_dir(settings.data_dir) / folder, dirs_exist_ok=True)
    old, new = manifest["data_dir"], str(settings.data_dir)
    if old != new:  # the rows point at files under the old data dir
        with session_scope(settings.db_url) as session:
            session.execute(text("UPDATE recordings SET stored_path = replace(stored_path, :old, :new)"),
                            {"old": old, "new": new})
            session.execute(text("UPDATE model_versions SET checkpoint = replace(checkpoint, :old, :new)"),
                            {"old": old, "new": new})
    return manifest
