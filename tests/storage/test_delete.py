"""Deleting a recording removes every row and file made from it (SQLite and PostgreSQL), and nothing else."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.library import delete_recording
from storage import schema
from storage.db import session_scope
from storage.feedback import vote_pairs
from storage.history import NotFound
from storage.speakers import rename
from storage.votes import record_ab
from tests.conftest import table_counts, tone, write_wav
from tests.helpers.store import add_recording_with_summaries, add_upload_with_thumbs


def recording_ids(settings) -> list[int]:
    with session_scope(settings.db_url) as session:
        return list(session.scalars(select(schema.Recording.id).order_by(schema.Recording.id)))


def two_recordings_with_votes(settings, tmp_path) -> tuple[int, int]:
    """Alice's two recordings, thumbs on each; the first also has an A/B vote and a renamed speaker."""
    add_upload_with_thumbs(settings, tmp_path, n=2)
    first, second = recording_ids(settings)
    with session_scope(settings.db_url) as session:
        a, b = session.scalars(select(schema.Summary.id).where(schema.Summary.recording_id == first))
        record_ab(session, a, b, "user:alice", "left")
        rename(session, first, "user:alice", "Speaker 1", "Priya")
    return first, second


def test_delete_removes_audio_transcript_summaries_names_votes_and_their_pairs(settings, tmp_path):
    first, second = two_recordings_with_votes(settings, tmp_path)
    with session_scope(settings.db_url) as session:
        before = len(vote_pairs(session))
        audio = session.get(schema.Recording, first).stored_path
    counts = table_counts(settings)
    assert delete_recording(settings, first, "user:alice").startswith(f"deleted recording {first}")
    after = table_counts(settings)
    assert after["recordings"] == counts["recordings"] - 1 and after["transcripts"] == counts["transcripts"] - 1
    assert after["summaries"] == counts["summaries"] - 2 and after["speaker_names"] == counts["speaker_names"] - 1
    assert after["thumb_votes"] == counts["thumb_votes"] - 2 and after["ab_votes"] == counts["ab_votes"] - 1
    with session_scope(settings.db_url) as session:
        assert len(vote_pairs(session)) == before - 2  # its thumbs pair and its A/B pair are gone
        assert session.scalar(select(func.count()).select_from(schema.Summary)
                              .where(schema.Summary.recording_id == second)) == 2
    assert not (tmp_path / "upload0.wav").exists() and audio.endswith("upload0.wav")
    assert (tmp_path / "upload1.wav").exists()


def test_only_the_owner_deletes_and_a_file_another_recording_uses_stays(settings, tmp_path):
    wav = write_wav(tmp_path / "shared.wav", tone(1.0))
    with session_scope(settings.db_url) as session:
        for who in ("user:alice", "user:bob"):
            session.add(schema.Recording(sha256="c" * 64, original_name="s.wav", duration_s=1.0, size_bytes=1,
                                         stored_path=str(wav), uploader=who))
    alices, bobs = recording_ids(settings)
    with pytest.raises(NotFound):
        delete_recording(settings, alices, "user:bob")
    delete_recording(settings, alices, "user:alice")
    assert wav.exists()  # Bob's recording is the same file
    delete_recording(settings, bobs, None)  # the operator (CLI) may delete anyone's
    assert not wav.exists() and recording_ids(settings) == []


def test_where_the_admin_keeps_votes_a_voted_recording_leaves_the_history_and_its_pairs_stay(settings, tmp_path):
    from storage.feedback import uploads
    from storage.history import recordings_of

    keeping = settings.model_copy(update={"delete_keeps_votes": True})
    first, second = two_recordings_with_votes(settings, tmp_path)
    with session_scope(settings.db_url) as session:
        session.add(schema.Summary(recording_id=first, text="never voted on", system="cascade", model_version="v",
                                   latency_s=0.1))
        pairs = vote_pairs(session)
    counts = table_counts(settings)
    said = delete_recording(keeping, first, "user:alice")
    assert "stay, without its name, to train the models" in said
    after = table_counts(settings)
    assert after["summaries"] == counts["summaries"] - 1 and after["speaker_names"] == counts["speaker_names"] - 1
    assert after["thumb_votes"] == counts["thumb_votes"] and after["ab_votes"] == counts["ab_votes"]
    with session_scope(settings.db_url) as session:
        assert [r.id for r in recordings_of(session, "user:alice")] == [second]  # gone from the history
        kept = session.get(schema.Recording, first)
        assert kept.original_name == "deleted recording" and kept.uploader.startswith("deleted:")
        assert vote_pairs(session) == pairs  # every pair its votes gave, with the audio
        assert [p for p, *_ in uploads(session, 10, 600.0)] == [session.get(schema.Recording, second).stored_path]
    assert (tmp_path / "upload0.wav").exists()
    assert delete_recording(keeping, second, "user:alice").startswith(f"deleted recording {second} from your")
    with pytest.raises(NotFound):  # a kept recording is no longer its former owner's to delete
        delete_recording(keeping, first, "user:alice")
    assert delete_recording(keeping, first, None).endswith("and everything made from it")  # the operator's
    assert first not in recording_ids(settings) and not (tmp_path / "upload0.wav").exists()
    with session_scope(settings.db_url) as session:  # no vote: deleted whole, as by default
        unvoted = session.get(schema.Summary, add_recording_with_summaries(session)[0]).recording_id
    assert delete_recording(keeping, unvoted, "u1").endswith("and everything made from it")
    assert unvoted not in recording_ids(settings)
