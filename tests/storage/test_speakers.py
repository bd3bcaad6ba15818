"""Speaker names on SQLite and PostgreSQL: set, change, clear; only the recording's owner may."""

from __future__ import annotations

import pytest

from storage.db import session_scope
from storage.history import NotFound
from storage.speakers import SpeakerError, names_of, rename
from tests.helpers.store import add_recording_with_summaries


def test_a_name_is_set_changed_and_cleared_by_the_owner_only(settings):
    with session_scope(settings.db_url) as s:
        add_recording_with_summaries(s, 1)
        assert rename(s, 1, "u1", "Speaker 2", "  Priya  ") == {"Speaker 2": "Priya"}
        assert rename(s, 1, "u1", "Speaker 2", "Priya K") == {"Speaker 2": "Priya K"}
        rename(s, 1, "u1", "Speaker 1", "Tom")
        assert rename(s, 1, "u1", "Speaker 2", "") == {"Speaker 1": "Tom"}
        with pytest.raises(NotFound):
            rename(s, 1, "someone-else", "Speaker 1", "Mallory")
        with pytest.raises(SpeakerError, match="not a speaker"):
            rename(s, 1, "u1", "Tom", "Thomas")
        with pytest.raises(SpeakerError, match="without ':'"):
            rename(s, 1, "u1", "Speaker 1", "Tom: the boss")
    with session_scope(settings.db_url) as s:
        assert names_of(s, 1) == {"Speaker 1": "Tom"}
