"""The data dir and the SQLite database are created private to the service's user (0700 and 0600)."""

from __future__ import annotations

import stat

from storage.audio import inspect_audio
from storage.db import ensure_schema
from storage.files import store_audio
from tests.conftest import tone, write_wav


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_data_dir_database_and_audio_store_are_private(tmp_path):
    data = tmp_path / "fresh" / "data"
    ensure_schema(f"sqlite:///{data / 'speechsum.db'}")
    assert mode(data) == 0o700 and mode(data / "speechsum.db") == 0o600
    assert all(mode(p) == 0o600 for p in data.glob("speechsum.db-*"))
    wav = write_wav(tmp_path / "a.wav", tone(1.0))
    info = inspect_audio(wav, 10**7, 60)
    stored, _ = store_audio(info.path, info.sha256, data / "audio")
    assert mode(data / "audio") == 0o700 and stored.exists()


def test_an_existing_shared_folder_keeps_its_mode(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    ensure_schema(f"sqlite:///{shared / 'x.db'}")
    assert mode(shared) == 0o755 and mode(shared / "x.db") == 0o600
