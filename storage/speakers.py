"""The names users give a recording's speakers; only the recording's owner may rename them."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.history import owned_recording
from storage.schema import SpeakerName, utcnow

LABEL = re.compile(r"Speaker \d{1,3}")


class SpeakerError(ValueError):
    """A rename that cannot be stored; the message is meant for the user."""


def names_of(session: Session, recording_id: int) -> dict[str, str]:
    rows = session.scalars(select(SpeakerName).where(SpeakerName.recording_id == recording_id))
    return {row.label: row.name for row in rows}


def rename(session: Session, recording_id: int, owner: str, label: str, name: str) -> dict[str, str]:
    """Names speaker `label` of the owner's recording (an empty name restores the label); returns all names."""
    owned_recording(session, recording_id, owner)
    if not LABEL.fullmatch(label):
        raise SpeakerError(f"{label!r} is not a speaker of this recording (they are called 'Speaker 1', ...)")
    name = " ".join(name.split())
    if len(name) > 64 or any(c in name for c in ":\n"):
        raise SpeakerError("a speaker's name is at most 64 characters, without ':'")
    row = session.scalar(select(SpeakerName).where(SpeakerName.recording_id == recording_id,
                                                   SpeakerName.label == label))
    if not name:
        if row is not None:
            session.delete(row)
    elif row is None:
        session.add(SpeakerName(recording_id=recording_id, label=label, name=name))
    else:
        row.name, row.updated_at = name, utcnow()
    session.flush()
    return names_of(session, recording_id)
