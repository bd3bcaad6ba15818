"""What users gave, read for training: preference pairs from votes, uploaded recordings, and how much is new.

Training reads the store only through these queries, so the stages hold no SQL of their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from itertools import product

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from storage import schema
from storage.history import DETACHED


@dataclass
class Pair:
    """A preference between two summaries of one recording and query."""

    query: str | None
    chosen: str
    rejected: str
    source: str  # "ab", "thumbs" or "auto"
    vote_ids: list[str] = field(default_factory=list)  # "ab:12", "thumb:3", ...
    audio: str | None = None  # a user's recording (vote pairs); automatic pairs use the item's frames
    item: int | None = None  # index of the training item (automatic pairs)


def _said(row: schema.Summary) -> str:
    return row.raw or row.text


def vote_pairs(session: Session, since: datetime | None = None) -> list[Pair]:
    """Every preference pair that users' votes give (see the module's docstring); with `since`, only
    pairs with a vote cast or changed after it (what a refresh has not learned from yet)."""
    pairs, since = [], schema.aware(since) if since else None
    new = lambda *votes: since is None or any(schema.aware(v.updated_at) > since for v in votes)  # noqa: E731
    left, right = aliased(schema.Summary), aliased(schema.Summary)
    rows = session.execute(
        select(schema.ABVote, left, right, schema.Recording.stored_path)
        .join(left, schema.ABVote.left_summary_id == left.id).join(right, schema.ABVote.right_summary_id == right.id)
        .join(schema.Recording, schema.Recording.id == left.recording_id)
        .where(schema.ABVote.choice.in_(("left", "right"))).order_by(schema.ABVote.id)
    ).all()
    for vote, l_row, r_row, audio in rows:
        chosen, rejected = (l_row, r_row) if vote.choice == "left" else (r_row, l_row)
        if new(vote):
            pairs.append(Pair(chosen.query, _said(chosen), _said(rejected), "ab", [f"ab:{vote.id}"], audio))
    thumbs = session.execute(
        select(schema.ThumbVote, schema.Summary, schema.Recording.stored_path)
        .join(schema.Summary, schema.ThumbVote.summary_id == schema.Summary.id)
        .join(schema.Recording, schema.Recording.id == schema.Summary.recording_id).order_by(schema.ThumbVote.id)
    ).all()
    groups: dict[tuple, dict[int, list]] = {}
    for vote, summary, audio in thumbs:
        key = (summary.recording_id, (summary.query or "").strip(), audio)
        groups.setdefault(key, {1: [], -1: []})[vote.value].append((vote, summary))
    for (_, query, audio), by_value in groups.items():
        for (up, good), (down, bad) in product(by_value[1], by_value[-1]):
            if _said(good) != _said(bad) and new(up, down):
                pairs.append(Pair(query or None, _said(good), _said(bad), "thumbs",
                                  [f"thumb:{up.id}", f"thumb:{down.id}"], audio))
    return pairs


def new_data(session: Session, since: datetime) -> dict:
    """Votes cast or changed, and recordings uploaded (with a transcript), after `since`."""
    count = lambda query: session.scalar(select(func.count()).select_from(query.subquery()))  # noqa: E731
    thumbs = count(select(schema.ThumbVote.id).where(schema.ThumbVote.updated_at > since))
    ab = count(select(schema.ABVote.id).where(schema.ABVote.updated_at > since))
    recordings = count(select(schema.Recording.id).where(schema.Recording.created_at > since)
                    .where(schema.Recording.transcripts.any()))
    return {"votes": thumbs + ab, "uploads": recordings}


def uploads(session: Session, limit: int, max_s: float, since: datetime | None = None
            ) -> list[tuple[str, str, str | None]]:
    """(stored path, transcript text, the newest summary's query) of users' recordings with a stored
    transcript, up to `max_s` long, newest first; with `since`, only those uploaded after it. A
    recording its owner deleted and the service kept for its votes is no upload any more."""
    newest_query = (select(schema.Summary.query).where(schema.Summary.recording_id == schema.Recording.id)
                    .order_by(schema.Summary.id.desc()).limit(1).scalar_subquery())
    query = (select(schema.Recording.stored_path, schema.Transcript.text, newest_query)
             .join(schema.Transcript, schema.Transcript.recording_id == schema.Recording.id)
             .where(schema.Recording.duration_s <= max_s, schema.Recording.uploader.not_like(f"{DETACHED}%"))
             .order_by(schema.Recording.id.desc()).limit(limit))
    if since:
        query = query.where(schema.Recording.created_at > since)
    return [tuple(row) for row in session.execute(query).all()]
