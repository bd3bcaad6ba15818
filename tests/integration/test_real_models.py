"""End to end with the real packaged models: Piper speech -> Whisper -> SmolLM2 -> SQLite.

Run the `speechsum` command itself in a subprocess, as a user would.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from app.pipeline import transcribe_file
from models.grounding import unsupported_terms
from models.serving import load_recognizer
from storage import schema
from storage.audio import decode
from storage.db import ensure_schema, get_engine, session_scope
from storage.settings import load_settings
from tests.conftest import stored_files, table_counts, write_wav
from tests.helpers.real import speechsum
from training.data.tts import synthesize

pytestmark = pytest.mark.real
MEETING_TEXT = (Path(__file__).parent.parent / "data" / "meeting.txt").read_text()



@pytest.fixture(scope="module")
def meeting_wav(tmp_path_factory) -> Path:
    """About 60 s of a meeting-like text read by the Piper voice."""
    return synthesize(MEETING_TEXT, tmp_path_factory.mktemp("audio") / "meeting.wav", speed=0.75)




def words(text: str) -> set[str]:
    return {w.strip(".,!?$'\"").lower() for w in text.split()}


def test_summarize_json_names_the_main_facts(data_env, meeting_wav):
    done = speechsum("summarize", str(meeting_wav), "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["transcript"]["duration_s"] >= 58
    assert out["transcript"]["language"] == "en"
    assert out["system"] == "cascade" and out["model_version"].startswith("smollm2-135m-instruct")

    everything = out["summary"] + " " + " ".join(p["text"] for p in out["key_points"])
    everything = everything.lower()
    # The meeting's values; not its topic words, which the light LM's greedy summary words differently
    # from one CPU's kernels to another's ("budget" was there on an AVX-512 CPU, not on an AVX2 one).
    for fact in ("40,000", "15th of may", "slow", "tom", "daniel"):
        assert fact in everything, f"{fact!r} missing from {everything!r}"
    assert unsupported_terms(out["summary"], out["transcript"]["text"]) == []
    starts = [p["start"] for p in out["key_points"]]
    assert starts == sorted(starts) and len(starts) == 5

    settings = load_settings()
    with session_scope(settings.db_url) as s:
        summary = s.scalars(select(schema.Summary)).one()
        assert (summary.id, summary.text, summary.system) == (out["summary_id"], out["summary"], "cascade")
        assert summary.transcript_id == out["transcript_id"] and summary.latency_s > 0
        recording = s.get(schema.Recording, out["recording_id"])
        assert Path(recording.stored_path).read_bytes() == meeting_wav.read_bytes()


@pytest.mark.slow
def test_focus_question_and_transcript_reuse(data_env, meeting_wav):
    first = speechsum("summarize", str(meeting_wav), "--json")
    again = speechsum("summarize", str(meeting_wav), "--json", "--query", "What did we decide about the launch date?")
    assert first.returncode == 0 and again.returncode == 0, again.stderr
    out = json.loads(again.stdout)
    assert out["query"] == "What did we decide about the launch date?"
    assert any("15th of May" in p["text"] for p in out["key_points"])
    assert out["transcript_id"] == json.loads(first.stdout)["transcript_id"]  # not transcribed twice
    counts = table_counts(load_settings())
    assert (counts["recordings"], counts["transcripts"], counts["summaries"]) == (1, 1, 2)


def test_transcribe_with_tiny_en(data_env, tmp_path):
    wav = synthesize("The quarterly report is due on Friday, and Maria will send it to the board.", tmp_path / "s.wav")
    done = speechsum("transcribe", str(wav), "--asr-model", "tiny.en", "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert {"quarterly", "report", "friday", "maria", "board"} <= words(out["transcript"]["text"])
    assert out["transcript"]["model_version"].startswith("whisper-tiny.en")
    segs = out["transcript"]["segments"]
    assert all(0 <= s["start"] < s["end"] <= out["transcript"]["duration_s"] + 0.5 for s in segs)


def test_windowed_transcription_loses_no_words(data_env, meeting_wav):
    """A 60 s recording in 20 s windows reads the same as in one window."""
    recognizer = load_recognizer(load_settings(asr_model="tiny.en"))
    whole = recognizer.transcribe(decode(meeting_wav), 60.0)
    windowed = recognizer.transcribe(decode(meeting_wav), 60.0, window_s=20.0)
    starts = [s.start for s in windowed.segments]
    assert starts == sorted(starts) and starts[-1] > 40
    missing = words(whole.text) - words(windowed.text)
    assert len(missing) <= 3, missing


def test_noise_without_speech_is_rejected_and_stores_nothing(data_env, tmp_path):
    noise = write_wav(tmp_path / "hiss.wav", 0.05 * np.random.default_rng(1).standard_normal(16_000 * 8))
    done = speechsum("summarize", str(noise))
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == "speechsum: error: no speech was found in the recording"
    settings = load_settings()
    assert set(table_counts(settings).values()) <= {0}
    assert stored_files(settings) == []


def test_database_failure_after_asr_leaves_no_file_and_no_row(data_env, tmp_path):
    settings = load_settings(asr_model="tiny.en")
    ensure_schema(settings.db_url)
    with get_engine(settings.db_url).begin() as conn:
        conn.exec_driver_sql("DROP TABLE transcripts")
    wav = synthesize("A short note about the budget for next year.", tmp_path / "note.wav")
    with pytest.raises(OperationalError):
        transcribe_file(settings, wav)
    assert stored_files(settings) == []
    with session_scope(settings.db_url) as s:
        assert s.scalar(select(func.count()).select_from(schema.Recording)) == 0


@pytest.mark.slow
def test_the_default_notes_model_writes_decisions_and_owned_dated_action_items(data_env, meeting_wav, monkeypatch):
    """The packaged Qwen2.5-Coder-1.5B (the default LM) writes the notes: the amount and the new launch
    date among the decisions, and the owners among the action items, each at its moment. (Whisper hears
    "Priya" as "per you" here, so her item cannot have her name.)"""
    monkeypatch.delenv("SPEECHSUM_LLM_MODEL")  # the default, not the tests' light LM
    done = speechsum("summarize", str(meeting_wav), "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["model_version"].startswith("qwen2.5-coder-1.5b-instruct")
    notes = out["notes"]
    decisions = " ".join(d["text"] for d in notes["decisions"]).lower()
    assert "40,000" in decisions and ("may 15" in decisions or "15th of may" in decisions), notes
    assert {"Tom", "Daniel"} <= {a["owner"] for a in notes["action_items"]}, notes
    said = {p["start"] for p in out["key_points"]} | {s["start"] for s in out["transcript"]["segments"]}
    assert all(item["start"] in said for item in notes["decisions"] + notes["action_items"])
    assert unsupported_terms(out["summary"], out["transcript"]["text"]) == []
