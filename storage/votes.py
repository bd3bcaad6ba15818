"""Recording votes. One vote per (item, voter): voting again replaces the earlier vote.

Votes are the learning loop's data, so a re-vote must never be lost: each vote is one upsert
(INSERT ... ON CONFLICT DO UPDATE, on SQLite and PostgreSQL alike). Two clicks of the same voter at
the same moment both succeed and the later one stays; a select-then-insert would let the second
fail on the unique constraint.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from storage.schema import AB_CHOICES, ABVote, Summary, ThumbVote, utcnow


class VoteError(ValueError):
    """A vote that cannot be stored; the message is meant for the user."""


def _require_summary(session: Session, summary_id: int) -> None:
    if session.get(Summary, summary_id) is None:
        raise VoteError(f"summary {summary_id} does not exist")


def _upsert(session: Session, table, values: dict, key: list[str], update: list[str]):
    """Inserts `values`, or updates the `update` columns of the row with the same `key`; returns the row."""
    dialect = {"sqlite": sqlite, "postgresql": postgresql}[session.get_bind().dialect.name]
    now = utcnow()
    stmt = dialect.insert(table).values(**values, created_at=now, updated_at=now)
    stmt = stmt.on_conflict_do_update(index_elements=key, set_={c: stmt.excluded[c] for c in [*update, "updated_at"]})
    session.execute(stmt)
    row = session.scalar(select(table).where(*(getattr(table, k) == values[k] for k in key)))
    session.refresh(row)
    return row


def record_thumb(session: Session, summary_id: int, voter: str, value: int) -> ThumbVote:
    if value not in (-1, 1):
        raise VoteError(f"a thumb vote is +1 or -1, not {value!r}")
    _require_summary(session, summary_id)
    return _upsert(session, ThumbVote, {"summary_id": summary_id, "voter": voter, "value": value},
                   ["summary_id", "voter"], ["value"])


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
    values = {"left_summary_id": left_id, "right_summary_id": right_id, "pair": pair, "voter": voter, "choice": choice}
    return _upsert(session, ABVote, values, ["pair", "voter"], ["left_summary_id", "right_summary_id", "choice"])
