"""Shared fixtures: an isolated data dir per test, a shared model cache, and audio makers."""

from __future__ import annotations

import hashlib
import wave
from pathlib import Path

import numpy as np
import platformdirs
import pytest
from sqlalchemy import func, select

from bench.services import SPEECHSUM, free_port, running_app  # noqa: F401 (the tests' names for them)
from storage import schema
from storage.db import session_scope, upgrade
from storage.settings import load_settings

SR = 16_000
# Converted model weights are shared by all tests (and with `make serve`): building them takes ~30 s.
MODEL_CACHE = Path(platformdirs.user_cache_dir("speechsum")) / "models"
ARTIFACTS = Path(__file__).parent.parent / "test-artifacts"


SERVICE_FIXTURES = {"postgres_server", "postgres_url"}


def pytest_collection_modifyitems(items) -> None:
    """A test that uses a PostgreSQL fixture (the storage tests' `postgresql` side) is a `services` test."""
    for item in items:
        if SERVICE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.services)


def speechsum_env(root: Path) -> dict[str, str]:
    """Environment for a speechsum with its own data dir (database, audio store) under `root`."""
    return {
        "SPEECHSUM_DATA_DIR": str(root / "data"),
        "SPEECHSUM_MODEL_CACHE": str(MODEL_CACHE),
        "SPEECHSUM_CONFIG": str(root / "no-config.toml"),
        "SPEECHSUM_WORKER": "0",  # tests that need a worker start their own
        "SPEECHSUM_WORKER_PROCESSES": "1",  # one worker where a test's serve starts them (a test may ask for more)
        "GRADIO_TEMP_DIR": str(root / "gradio"),  # a server's temporary uploads, where a test can see them
        # The light LM: a real summary in seconds. The notes model's tests (tests/e2e/test_notes.py,
        # tests/integration/test_real_models.py) ask for the default.
        "SPEECHSUM_LLM_MODEL": "smollm2-135m-instruct",
    }


@pytest.fixture
def data_env(tmp_path, monkeypatch):
    """Points speechsum at a fresh data dir for this test only."""
    for name, value in speechsum_env(tmp_path).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("DATABASE_URL", raising=False)
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
    import av

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


def add_summary(settings, owner: str, text: str, transcript: str = "Hello.", name: str = "talk.wav",
                query: str | None = None) -> int:
    """Stores a summary as the pipeline would, under `owner`'s recording `name` (made on first use,
    with `transcript`); returns the summary id. For tests of what happens after summarizing."""
    with session_scope(settings.db_url) as s:
        sha = hashlib.sha256(f"{owner}/{name}".encode()).hexdigest()
        recording = s.scalar(select(schema.Recording).where(schema.Recording.sha256 == sha))
        if recording is None:
            recording = schema.Recording(sha256=sha, original_name=name, duration_s=4.0, size_bytes=1000,
                                         stored_path="/nowhere", uploader=owner)
            recording.transcripts.append(schema.Transcript(
                model_id="whisper-test", language="en", language_probability=1.0, text=transcript,
                segments=[{"start": 0.0, "end": 4.0, "text": transcript}], latency_s=1.0))
            s.add(recording)
            s.flush()
        summary = schema.Summary(recording_id=recording.id, transcript_id=recording.transcripts[0].id, query=query,
                                 text=text, key_points=[], system="cascade", model_version="test", latency_s=0.5)
        s.add(summary)
        s.flush()
        return summary.id




