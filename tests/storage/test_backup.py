"""Backup while summaries are written, restore into an empty store: identical rows and files (SQLite, PostgreSQL)."""

from __future__ import annotations

import threading
import uuid

import psycopg
import pytest
from sqlalchemy import select

from storage import schema
from storage.audio import inspect_audio
from storage.backup import BackupError, backup, restore
from storage.db import session_scope, upgrade
from storage.files import sha256_file, store_audio
from storage.settings import load_settings
from tests.conftest import tone, write_wav


def rows(settings) -> dict[str, list[tuple]]:
    with session_scope(settings.db_url) as session:
        return {t.name: [tuple(r) for r in session.execute(select(t).order_by(*t.primary_key.columns))]
                for t in schema.Base.metadata.sorted_tables}


def add_recording(settings, i: int) -> None:
    info = inspect_audio(write_wav(settings.data_dir.parent / f"in{i}.wav", tone(1.0 + i / 10)), 10**7, 60)
    stored, _ = store_audio(info.path, info.sha256, settings.audio_dir)
    with session_scope(settings.db_url) as s:
        rec = schema.Recording(sha256=info.sha256, original_name=f"m{i}.wav", duration_s=1.0, size_bytes=1,
                               stored_path=str(stored), uploader="user:alice")
        s.add(rec)
        s.flush()
        s.add(schema.Summary(recording_id=rec.id, text=f"summary {i}", system="cascade", model_version="v",
                             latency_s=0.1))


def empty_store(settings, tmp_path, request):
    """Settings for a new data dir and an empty database of the same kind."""
    env = {"SPEECHSUM_DATA_DIR": str(tmp_path / "restored"), "SPEECHSUM_CONFIG": str(tmp_path / "none.toml")}
    if settings.db_url.startswith("postgresql"):
        host, port = request.getfixturevalue("postgres_server")
        name = f"r_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(host=host, port=port, user="postgres", dbname="postgres", autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        env["DATABASE_URL"] = f"postgresql+psycopg://postgres@/{name}?host={host}&port={port}"
    fresh = load_settings(env)
    upgrade(fresh.db_url)
    return fresh


def test_a_backup_taken_while_summaries_are_written_restores_to_identical_rows_and_files(settings, tmp_path, request):
    for i in range(3):
        add_recording(settings, i)
    writer = threading.Thread(target=lambda: [add_recording(settings, i) for i in range(3, 8)])
    writer.start()
    manifest = backup(settings, tmp_path / "backup")
    writer.join()
    fresh = empty_store(settings, tmp_path, request)
    restore(fresh, tmp_path / "backup")
    source, restored = rows(settings), rows(fresh)
    n = len(restored["recordings"])
    assert 3 <= n <= 8 and len(restored["summaries"]) == n  # a consistent snapshot: each recording with its summary
    for table in ("summaries", "thumb_votes", "ab_votes"):
        assert restored[table] == source[table][: len(restored[table])]
    columns = schema.Recording.__table__.columns.keys()
    for before, after in zip(source["recordings"], restored["recordings"]):
        before, after = dict(zip(columns, before)), dict(zip(columns, after))
        assert after.pop("stored_path").startswith(str(fresh.data_dir)) and before.pop("stored_path")
        assert after == before
    for recording in restored["recordings"]:
        row = dict(zip(columns, recording))
        assert sha256_file(row["stored_path"]) == row["sha256"]  # the very bytes, under the new data dir
    assert any(name.startswith("audio/") for name in manifest["files"])


def test_a_damaged_backup_or_a_store_with_rows_is_refused(settings, tmp_path, request):
    add_recording(settings, 0)
    backup(settings, tmp_path / "backup")
    with pytest.raises(BackupError, match="already holds rows"):
        restore(settings, tmp_path / "backup")
    damaged = next((tmp_path / "backup" / "audio").rglob("*.wav"))
    damaged.write_bytes(b"not the same")
    with pytest.raises(BackupError, match="does not match the manifest"):
        restore(empty_store(settings, tmp_path, request), tmp_path / "backup")
    with pytest.raises(BackupError, match="not empty"):
        backup(settings, tmp_path / "backup")
