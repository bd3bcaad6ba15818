"""A user's own recordings and summaries: history, votes, speaker names; nobody reaches another owner's."""

from __future__ import annotations

from pathlib import Path

from app.pipeline import Result, load_result
from storage import schema
from storage.db import ensure_schema, session_scope
from storage.history import (
    MAX_ID,
    Listing,
    find_summaries,
    owned_recording,
    owned_summary,
    recordings_of,
    thumb_of,
    unsummarized,
)
from storage.history import delete_recording as history_delete
from storage.settings import Settings
from storage.speakers import rename
from storage.votes import record_ab, record_thumb


def delete_recording(settings: Settings, recording_id: int, owner: str | None) -> str:
    """Deletes a recording with all that was made from it, and its audio file unless another
    recording (the same file uploaded by someone else) still uses it; `owner` None: the operator.
    Where the admin keeps votes (`SPEECHSUM_DELETE_KEEPS_VOTES`), a voted recording leaves the
    owner's history and keeps what its votes need to train; the message says so."""
    with session_scope(settings.db_url) as session:
        path, shared, kept = history_delete(session, recording_id, owner, settings.delete_keeps_votes)
    if not shared:
        Path(path).unlink(missing_ok=True)
    if kept:
        return (f"deleted recording {recording_id} from your history; as this service is set up, its audio, "
                "transcript and the summaries that have votes stay, without its name, to train the models")
    return f"deleted recording {recording_id} and everything made from it"


def my_recordings(settings: Settings, owner: str) -> list[tuple[int, str]]:
    """(id, "name · date") of the owner's recordings, newest first."""
    ensure_schema(settings.db_url)
    with session_scope(settings.db_url) as session:
        return [(r.id, f"{r.original_name} · {r.created_at:%Y-%m-%d %H:%M}") for r in recordings_of(session, owner)]


def recording_file(settings: Settings, recording_id: int, owner: str) -> tuple[str, str]:
    """(stored path, original name) of one of the owner's recordings."""
    with session_scope(settings.db_url) as session:
        recording = owned_recording(session, recording_id, owner)
        return recording.stored_path, recording.original_name


def recording_audio_path(settings: Settings, recording_id: int) -> str | None:
    """Where a recording's audio is stored, if the recording and its file exist."""
    with session_scope(settings.db_url) as session:
        recording = session.get(schema.Recording, recording_id) if 0 < recording_id <= MAX_ID else None
        path = recording.stored_path if recording else None
    return path if path and Path(path).is_file() else None


def rename_speaker(settings: Settings, summary_id: int, owner: str, label: str, name: str) -> Result:
    """Names a speaker of the recording behind one of the owner's summaries; returns it renamed."""
    with session_scope(settings.db_url) as session:
        recording_id = owned_summary(session, summary_id, owner).recording_id
        rename(session, recording_id, owner, label, name)
    return load_result(settings, summary_id, owner)


def history(settings: Settings, owner: str, text: str = "", limit: int = 50) -> list[Listing]:
    with session_scope(settings.db_url) as session:
        return find_summaries(session, owner, text, limit)


def interrupted(settings: Settings, owner: str) -> list[tuple[str, int]]:
    """(label, recording id) of the owner's recordings that have no summary (one was interrupted)."""
    with session_scope(settings.db_url) as session:
        return [(f"{r.original_name} · {r.created_at:%Y-%m-%d %H:%M} · {r.duration_s:.0f} s", r.id)
                for r in unsummarized(session, owner)]


def summarize_again(settings: Settings, recording_id: int, owner: str, progress=None):
    """Summarizes one of the owner's stored recordings again (its transcript is reused when it has one)."""
    from app.worker import summarize_upload

    with session_scope(settings.db_url) as session:
        recording = owned_recording(session, recording_id, owner)
        path, name = recording.stored_path, recording.original_name
    return summarize_upload(settings, path, progress, uploader=owner, original_name=name)


def vote_thumb(settings: Settings, summary_id: int, voter: str, value: int) -> None:
    """Thumbs up (+1) or down (-1) on one of the voter's own summaries; a new vote replaces the old."""
    with session_scope(settings.db_url) as session:
        owned_summary(session, summary_id, voter)
        record_thumb(session, summary_id, voter, value)


def vote_ab(settings: Settings, left_id: int, right_id: int, voter: str, choice: str) -> None:
    """An A/B vote between two of the voter's summaries, as they were shown (left, right)."""
    with session_scope(settings.db_url) as session:
        owned_summary(session, left_id, voter)
        owned_summary(session, right_id, voter)
        record_ab(session, left_id, right_id, voter, choice)


def my_thumb(settings: Settings, summary_id: int, voter: str) -> int | None:
    with session_scope(settings.db_url) as session:
        return thumb_of(session, summary_id, voter)


