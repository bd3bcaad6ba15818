"""Rows the tests add to a store: recordings with summaries, uploads with thumbs."""

from __future__ import annotations

from storage import schema
from storage.db import session_scope
from storage.votes import record_thumb
from tests.conftest import tone, write_wav

FAST = dict(minutes=0.2, eval_items=2, facts_meetings=0, auto_items=0, auto_meetings=0, min_votes=2, min_uploads=1)


def add_upload_with_thumbs(settings, tmp_path, n: int = 1) -> None:
    """A user's recording with its transcript and two summaries, one voted up and one down."""
    for i in range(n):
        wav = write_wav(tmp_path / f"upload{i}.wav", tone(2.0 + i))
        with session_scope(settings.db_url) as s:
            rec = schema.Recording(sha256=f"{i:064d}", original_name=wav.name, duration_s=2.0 + i, size_bytes=1,
                                   stored_path=str(wav), uploader="user:alice")
            s.add(rec)
            s.flush()
            s.add(schema.Transcript(recording_id=rec.id, model_id="asr", language="en", language_probability=1.0,
                                    segments=[], text="the budget is approved", latency_s=0.1))
            good, bad = (schema.Summary(recording_id=rec.id, query="What about the budget?", text=text,
                                        system="student", model_version="v", latency_s=1.0)
                         for text in ("the budget is approved", "the recording is the audio"))
            s.add_all([good, bad])
            s.flush()
            record_thumb(s, good.id, "user:alice", 1)
            record_thumb(s, bad.id, "user:alice", -1)


def add_recording_with_summaries(session, n: int = 2, sha: str = "a" * 64) -> list[int]:
    rec = schema.Recording(sha256=sha, original_name="m.wav", duration_s=60.0, size_bytes=1,
                           stored_path="/x", uploader="u1")
    session.add(rec)
    session.flush()
    rows = [schema.Summary(recording_id=rec.id, text=f"summary {i}", system="cascade", model_version="v",
                           latency_s=1.0) for i in range(n)]
    session.add_all(rows)
    session.flush()
    return [r.id for r in rows]


