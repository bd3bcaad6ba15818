"""Recording votes. One vote per (item, voter): voting again replaces the earlier vote."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.schema import AB_CHOICES, ABVote, Summary, ThumbVote, utcnow


class VoteError(ValueError):
    """A vote that cannot be stored; the message is meant for the user."""


def _require_summary(session: Session, summary_id: int) -> None:
    if session.get(Summary, summary_id) is None:
        raise VoteError(f"summary {summary_id} does not exist")


def record_thumb(session: Session, summary_id: int, voter: str, value: int) -> ThumbVote:
    if value not in (-1, 1):
        raise VoteError(f"a thumb vote is +1 or -1, not {value!r}")
    _require_summary(session, summary_id)
    vote = session.scalar(select(ThumbVote).where(ThumbVote.summary_id == summary_id, ThumbVote.voter == voter))
    if vote is None:
        vote = ThumbVote(summary_id=summary_id, voter=voter, value=value)
        session.add(vote)
    else:
        vote.value, vote.updated_at = value, utcnow()
    session.flush()
    return vote


def record_ab(session: Session, left_id: int, right_id: int, voter: str, choice: str) -> ABVote:
    """Stores which summary was shown on which side, and the choice relative to those sides."""
    if choice not in AB_CHOICES:
        raise VoteError(f"an A/B choice is one of {', '.join(AB_CHOICES)}, not {choice!r}")
    if left_id == right_id:
        raise VoteError("an A/B vote needs two different summaries")
    left, right = session.get(Summary, left_id), session.get(Summary, right_id)
    for sid, row in ((left_id, left), (right_id, right)):
        if row is None:
            raise VoteError(f"summary {sid} does not exist")
    if left.recording_id != right.recording_id:
        raise VoteError("an A/B vote compares two summaries of the same recording")
    pair = f"{min(left_id, right_id)}:{max(left_id, right_id)}"
    vote = session.scalar(select(ABVote).where(ABVote.pair == pair, ABVote.voter == voter))
    if vote is None:
        vote = ABVote(left_summary_id=left_id, right_summary_id=right_id, pair=pair, voter=voter, choice=choice)
        session.add(vote)
    else:
        vote.left_summary_id, vote.right_summary_id = left_id, right_id
        vote.choice, vote.updated_at = choice, utcnow()
    session.flush()
    return vote
