"""Shared fixtures: an isolated data dir per test, a shared model cache, and audio makers."""

from __future__ import annotations

import wave
from pathlib import Path

import av
import numpy as np
import platformdirs
import pytest
from sqlalchemy import func, select

from app.config import load_settings
from storage import schema
from storage.db import session_scope, upgrade

SR = 16_000
# Converted model weights are shared by all tests (and with `make serve`): building them takes ~30 s.
MODEL_CACHE = Path(platformdirs.user_cache_dir("speechsum")) / "models"


@pytest.fixture
def data_env(tmp_path, monkeypatch):
    """Points speechsum at a fresh data dir (database, audio store) for this test only."""
    monkeypatch.setenv("SPEECHSUM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SPEECHSUM_MODEL_CACHE", str(MODEL_CACHE))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("SPEECHSUM_CONFIG", str(tmp_path / "no-config.toml"))
    return tmp_path / "data"


@pytest.fixture
def settings(data_env):
    s = load_settings()
    upgrade(s.db_url)
    return s


def write_wav(path: Path, samples: np.ndarray, sr: int = SR) -> Path:
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(pcm.tobytes())
    return path


def tone(seconds: float, sr: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 0.5 * t)) / 2).astype(np.float32)


def write_mp3(path: Path, samples: np.ndarray, sr: int = SR) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libmp3lame", rate=sr, layout="mono")
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1).astype(np.float32), format="flt", layout="mono")
        frame.sample_rate = sr
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    return path


def table_counts(settings) -> dict[str, int]:
    with session_scope(settings.db_url) as session:
        return {t.name: session.scalar(select(func.count()).select_from(t)) for t in schema.Base.metadata.sorted_tables}


def stored_files(settings) -> list[Path]:
    return [p for p in settings.audio_dir.rglob("*") if p.is_file()] if settings.audio_dir.exists() else []
