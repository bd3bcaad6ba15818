"""Hostile calls against the real `speechsum serve` with logins, on SQLite and on PostgreSQL: broken
and lying files, path-traversal names, ids out of range, values out of their set. Each is answered
with one line and an error id; no answer holds SQL, a parameter or a path of the server; nothing
is stored."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from bench.services import new_database
from storage.db import upgrade
from storage.settings import load_settings
from tests.conftest import running_app, speechsum_env, stored_files, table_counts, tone, write_wav
from tests.storage.conftest import postgres_server  # noqa: F401 (fixture)

pytestmark = pytest.mark.services
SQL = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE FROM|VALUES|WHERE)\b|%\(|psycopg|sqlite3|sqlalchemy", re.I)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(f"hostile-{request.param}")
    env = speechsum_env(root) | {"SPEECHSUM_USERS": "mallory:not-a-secret"}
    if request.param == "postgresql":
        env["DATABASE_URL"] = new_database(request.getfixturevalue("postgres_server"))
    settings = load_settings(env)
    upgrade(settings.db_url)
    with running_app(env, log_path=root / "server.log") as url:
        yield Client(url, auth=("mallory", "not-a-secret"), verbose=False), settings, root


def _wav_header(channels: int, rate: int, bits: int, data_bytes: int) -> bytes:
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * block, block, bits)
    return b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVEfmt " + struct.pack("<I", 16) + fmt + \
        b"data" + struct.pack("<I", data_bytes)


def hostile_files(folder) -> list:
    import soundfile as sf

    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(7)
    files = {
        "empty.wav": b"",
        "random.mp3": rng.bytes(50_000),
        "37-hours.wav": _wav_header(1, 8_000, 8, 37 * 3600 * 8_000) + rng.bytes(4_000),
        "65535-channels.wav": _wav_header(65_535, 16_000, 8, 65_535 * 100) + rng.bytes(4_000),
        "..%2F..%2Fetc%2Fpasswd.wav": rng.bytes(3_000),
        "html.webm": b"<!doctype html><script>alert(1)</script>" * 50,
    }
    paths = []
    for name, data in files.items():
        (folder / name).write_bytes(data)
        paths.append(folder / name)
    sf.write(folder / "nan.wav", np.full(32_000, np.nan, np.float32), 16_000, subtype="FLOAT")
    paths.append(folder / "nan.wav")
    paths.append(write_wav(folder / "silence.wav", np.zeros(48_000, np.float32)))
    return paths


REPO = str(Path(__file__).resolve().parents[2])


def _check(message: str, root, settings) -> None:
    server_paths = {str(root), str(settings.data_dir), REPO, "/tmp/", "site-packages"}
    assert "\n" not in message.strip(), message
    assert re.search(r"\(error [0-9a-f]{8}\)", message), message
    assert not SQL.search(message), message
    assert not any(p in message for p in server_paths), message


def test_hostile_calls_get_one_line_with_an_id_and_no_internals_and_store_nothing(server, tmp_path):
    client, settings, root = server
    calls = [(lambda p=path: client.predict(handle_file(str(p)), "", "", "cascade", api_name="/summarize"))
             for path in hostile_files(tmp_path / "files")]
    calls += [(lambda p=path: client.predict(handle_file(str(p)), "", "", "samples", api_name="/compare"))
              for path in hostile_files(tmp_path / "files")[:3]]
    for bad in (2**70, -1, 0, 2**63):
        calls += [lambda b=bad: client.predict(b, api_name="/summary"),
                  lambda b=bad: client.predict(b, 1, "", api_name="/thumb"),
                  lambda b=bad: client.predict(b, b + 1, "left", "", api_name="/ab_vote"),
                  lambda b=bad: client.predict(b, "md", "", api_name="/export"),
                  lambda b=bad: client.predict(b, "", api_name="/delete")]
    calls += [lambda: client.predict(1, 7, "", api_name="/thumb"),
              lambda: client.predict(1, 2, "sideways", "", api_name="/ab_vote"),
              lambda: client.predict(1, "../../etc/passwd", "", api_name="/export"),
              lambda: client.predict("'; DROP TABLE recordings; --", "", api_name="/search"),
              lambda: client.predict(handle_file(str(write_wav(tmp_path / "t.wav", tone(1.0)))), "", "",
                                     "'; DROP TABLE x; --", api_name="/summarize")]
    answered = 0
    for call in calls:
        try:
            result = call()
        except AppError as exc:
            _check(str(exc), root, settings)
            answered += 1
        else:
            assert not SQL.search(str(result)) or "DROP TABLE" in str(result), result  # a search answers
    assert answered >= len(calls) - 1  # every call but the search is refused
    assert not any(table_counts(settings).values()) and stored_files(settings) == []
    log = (root / "server.log").read_text()
    assert "Traceback" not in log


@pytest.mark.real
def test_a_file_name_of_600_characters_is_cut_before_storage(server, tmp_path):
    """It failed on PostgreSQL after transcription, and sent the client the SQL and the paths. The
    name travels as the upload's `orig_name`, as a browser sends it (Gradio cuts its own copy's name)."""
    import json

    import requests

    from training.data.tts import synthesize

    client, settings, root = server
    url = client.src.rstrip("/")
    wav = synthesize("We agreed to spend forty thousand dollars on the redesign.", tmp_path / "talk.wav", "flite")
    http = requests.Session()
    http.post(f"{url}/login", data={"username": "mallory", "password": "not-a-secret"}).raise_for_status()
    (uploaded,) = http.post(f"{url}/gradio_api/upload", files={"files": ("talk.wav", wav.read_bytes())}).json()
    name = "meeting-" + "x" * 600 + ".wav"
    audio = {"path": uploaded, "orig_name": name, "meta": {"_type": "gradio.FileData"}}
    event = http.post(f"{url}/gradio_api/call/summarize", json={"data": [audio, "", "", "cascade"]}).json()
    stream = http.get(f"{url}/gradio_api/call/summarize/{event['event_id']}", timeout=300).text
    assert "event: complete" in stream, stream[-500:]
    (made,) = json.loads(stream.split("event: complete", 1)[1].split("data:", 1)[1].strip())
    assert made["summary_id"] > 0
    from sqlalchemy import select

    from storage import schema
    from storage.db import session_scope

    with session_scope(settings.db_url) as session:
        stored = session.scalar(select(schema.Recording.original_name).where(
            schema.Recording.id == made["recording_id"]))
    assert len(stored) <= 200 and stored.startswith("meeting-xxx") and stored.endswith(".wav")
