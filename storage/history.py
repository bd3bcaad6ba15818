"""Reading back what a user made: their summaries, searchable, each only for its owner.

The owner is whoever uploaded the recording: a logged-in user, a browser or an API client (the
web app names them `user:...`, `browser:...`, `client:...`). Other owners' summaries do not
exist as far as a user can tell, so ids cannot be guessed to read someone else's meeting.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from storage.schema import ABVote, Recording, SpeakerName, Summary, ThumbVote, Transcript


class NotFound(LookupError):
    """Nothing of that id belongs to this user; the message is meant for the user."""


@dataclass(frozen=True)
class Listing:
    """One line of a user's history."""

    summary_id: int
    recording_id: int
    created_at: datetime
    original_name: str
    query: str | None
    system: str
    text: str

    def label(self) -> str:
        when = self.created_at.strftime("%Y-%m-%d %H:%M")
        focus = f" · “{self.query}”" if self.query else ""
        preview = self.text if len(self.text) <= 80 else self.text[:79] + "…"
        return f"#{self.summary_id} · {when} · {self.original_name}{focus} — {preview}"

    def as_dict(self) -> dict:
        return {
            "summary_id": self.summary_id, "recording_id": self.recording_id,
            "created_at": self.created_at.isoformat(), "original_name": self.original_name,
            "query": self.query, "system": self.system, "summary": self.text,
        }


def _like(text: str) -> str:
    """A LIKE pattern that matches `text` literally (its % and _ are not wildcards)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def find_summaries(session: Session, owner: str, text: str = "", limit: int = 50) -> list[Listing]:
    """The owner's summaries, newest first; `text` filters on file name, question, summary and transcript."""
    query = (
        select(Summary, Recording.original_name)
        .join(Recording, Summary.recording_id == Recording.id)
        .outerjoin(Transcript, Summary.transcript_id == Transcript.id)
        .where(Recording.uploader == owner)
    )
    if text.strip():
        pattern = _like(text.strip())
        query = query.where(
            or_(
                Recording.original_name.ilike(pattern, escape="\\"),
                Summary.query.ilike(pattern, escape="\\"),
                Summary.text.ilike(pattern, escape="\\"),
                Transcript.text.ilike(pattern, escape="\\"),
            )
        )
    rows = session.execute(query.order_by(Summary.created_at.desc(), Summary.id.desc()).limit(limit))
    return [
        Listing(s.id, s.recording_id, s.created_at, name, s.query, s.system, " ".join(s.text.split()))
        for s, name in rows
    ]


def unsummarized(session: Session, owner: str, limit: int = 20) -> list[Recording]:
    """The owner's recordings with no summary, newest first: a summary that was killed halfway left them."""
    has_summary = select(Summary.id).where(Summary.recording_id == Recording.id).exists()
    return list(session.scalars(select(Recording).where(Recording.uploader == owner, ~has_summary)
                                .order_by(Recording.created_at.desc(), Recording.id.desc()).limit(limit)))


MAX_ID = 2**63 - 1  # the largest id either database stores: a larger one is refused, not sent to SQL


def _id(value: object, what: str) -> int:
    """A row id as a client gave it, checked: a whole number from 1 to MAX_ID, else "not found"."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_ID:
        raise NotFound(f"{what} {str(value)[:24]} was not found")
    return value


def safe_name(name: str, limit: int = 200) -> str:
    """A file name as stored: at most `limit` characters, its extension kept (the column holds 512)."""
    if len(name) <= limit:
        return name
    suffix = Path(name).suffix[:16]
    return name[: limit - len(suffix)] + suffix


def owned_summary(session: Session, summary_id: int, owner: str) -> Summary:
    summary = session.get(Summary, _id(summary_id, "summary"))
    if summary is None or summary.recording.uploader != owner:
        raise NotFound(f"summary {summary_id} was not found")
    return summary


def thumb_of(session: Session, summary_id: int, voter: str) -> int | None:
    """The voter's current thumb on a summary (+1, -1), or None."""
    return session.scalar(select(ThumbVote.value).where(ThumbVote.summary_id == summary_id, ThumbVote.voter == voter))



def recordings_of(session: Session, owner: str, limit: int = 50) -> list[Recording]:
    """The owner's recordings, newest first (the Compare tab offers them)."""
    return list(session.scalars(select(Recording).where(Recording.uploader == owner)
                                .order_by(Recording.id.desc()).limit(limit)))


def owned_recording(session: Session, recording_id: int, owner: str) -> Recording:
    recording = session.get(Recording, _id(recording_id, "recording"))
    if recording is None or recording.uploader != owner:
        raise NotFound(f"recording {recording_id} was not found among yours")
    return recording


DETACHED = "deleted:"  # the uploader of a deleted recording whose votes stay as training data


def _voted_summaries(session: Session, recording_id: int) -> set[int]:
    ids = set(session.scalars(select(Summary.id).where(Summary.recording_id == recording_id)))
    thumbs = session.scalars(select(ThumbVote.summary_id).where(ThumbVote.summary_id.in_(ids)))
    ab = session.execute(select(ABVote.left_summary_id, ABVote.right_summary_id)
                         .where(or_(ABVote.left_summary_id.in_(ids), ABVote.right_summary_id.in_(ids))))
    return set(thumbs) | {i for pair in ab for i in pair}


def delete_recording(session: Session, recording_id: int, owner: str | None, keep_votes: bool = False
                     ) -> tuple[str, bool, bool]:
    """Deletes one of the owner's recordings (any owner's with None: the operator) and, by the
    database's cascades, everything made from it: transcripts, summaries with their chapters and
    notes, speaker names, and the votes on those summaries (so the preference pairs they gave go too).

    With `keep_votes` (the admin's `SPEECHSUM_DELETE_KEEPS_VOTES`) a recording with votes that its
    owner deletes leaves their history but keeps what its votes need to train (the audio, its
    transcript, the voted summaries); its name and speaker names and every summary without a vote
    go. The operator's delete (`owner` None) removes everything, kept recordings included.
    Returns the stored audio path, whether a recording still uses that file, and whether this one
    was kept for its votes."""
    recording = session.get(Recording, _id(recording_id, "recording"))
    if recording is None or owner is not None and recording.uploader != owner:
        raise NotFound(f"recording {recording_id} was not found among yours")
    path = recording.stored_path
    voted = _voted_summaries(session, recording.id) if keep_votes and owner is not None else set()
    if voted:
        recording.uploader, recording.original_name = f"{DETACHED}{recording.id}", "deleted recording"
        session.execute(delete(Summary).where(Summary.recording_id == recording.id, Summary.id.not_in(voted)))
        session.execute(delete(SpeakerName).where(SpeakerName.recording_id == recording.id))
        return path, True, True
    session.execute(delete(Recording).where(Recording.id == recording.id))
    shared = session.scalar(select(func.count()).select_from(Recording).where(Recording.stored_path == path))
    return path, bool(shared), False
