"""Votes on a real SQLite database created by the Alembic migrations."""

from __future__ import annotations

import threading

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from storage import schema
from storage.db import get_engine, session_scope
from storage.votes import VoteError, record_ab, record_thumb
from tests.helpers.store import add_recording_with_summaries


def test_migrations_match_the_models(settings, request):
    engine = get_engine(settings.db_url)
    assert engine.dialect.name == request.node.callspec.params["settings"]
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), schema.Base.metadata)
    assert diff == []


def test_thumb_vote_again_replaces_the_first(settings):
    with session_scope(settings.db_url) as s:
        (sid,) = add_recording_with_summaries(s, 1)
        record_thumb(s, sid, "alice", 1)
        record_thumb(s, sid, "bob", -1)
        record_thumb(s, sid, "alice", -1)
    with session_scope(settings.db_url) as s:
        votes = {v.voter: v.value for v in s.scalars(select(schema.ThumbVote))}
    assert votes == {"alice": -1, "bob": -1}


def test_thumb_vote_rejects_bad_values_and_unknown_summaries(settings):
    with session_scope(settings.db_url) as s:
        (sid,) = add_recording_with_summaries(s, 1)
        with pytest.raises(VoteError, match=r"\+1 or -1"):
            record_thumb(s, sid, "alice", 2)
        with pytest.raises(VoteError, match="summary 999 does not exist"):
            record_thumb(s, 999, "alice", 1)


def test_database_enforces_one_thumb_per_voter(settings):
    """The unique constraint holds even for writers that bypass storage.votes."""
    with pytest.raises(IntegrityError):
        with session_scope(settings.db_url) as s:
            (sid,) = add_recording_with_summaries(s, 1)
            s.add_all([schema.ThumbVote(summary_id=sid, voter="x", value=1),
                       schema.ThumbVote(summary_id=sid, voter="x", value=-1)])
    with session_scope(settings.db_url) as s:  # the failed transaction left nothing behind
        assert s.scalars(select(schema.Summary)).all() == []


def test_ab_vote_records_sides_and_counts_swapped_order_as_the_same_pair(settings):
    with session_scope(settings.db_url) as s:
        a, b = add_recording_with_summaries(s, 2)
        record_ab(s, a, b, "alice", "left")
        record_ab(s, b, a, "alice", "right")  # same pair shown the other way round: replaces
        record_ab(s, a, b, "bob", "both_bad")
    with session_scope(settings.db_url) as s:
        votes = {v.voter: (v.left_summary_id, v.right_summary_id, v.choice) for v in s.scalars(select(schema.ABVote))}
    assert votes == {"alice": (b, a, "right"), "bob": (a, b, "both_bad")}


@pytest.mark.parametrize(
    ("choice", "same", "message"),
    [("middle", False, "one of left, right, tie, both_bad"), ("tie", True, "two different summaries")],
)
def test_ab_vote_rejects_bad_votes(settings, choice, same, message):
    with session_scope(settings.db_url) as s:
        a, b = add_recording_with_summaries(s, 2)
        with pytest.raises(VoteError, match=message):
            record_ab(s, a, a if same else b, "alice", choice)


def test_ab_vote_needs_summaries_of_one_recording(settings):
    with session_scope(settings.db_url) as s:
        (a,) = add_recording_with_summaries(s, 1, sha="a" * 64)
        (b,) = add_recording_with_summaries(s, 1, sha="b" * 64)
        with pytest.raises(VoteError, match="same recording"):
            record_ab(s, a, b, "alice", "tie")


def test_twenty_concurrent_revotes_all_succeed_and_the_last_one_stays(settings):
    """Issue: two clicks at once raised IntegrityError and lost the user's latest vote."""
    with session_scope(settings.db_url) as s:
        a, b = add_recording_with_summaries(s, 2)
    start, errors = threading.Barrier(20), []

    def revote(i: int) -> None:
        start.wait()
        try:
            with session_scope(settings.db_url) as s:
                record_thumb(s, a, "alice", 1 if i % 2 else -1)
                record_ab(s, a, b, "alice", ("left", "right", "tie", "both_bad")[i % 4])
        except Exception as exc:  # noqa: BLE001 - every error is the failure being tested
            errors.append(exc)

    threads = [threading.Thread(target=revote, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with session_scope(settings.db_url) as s:
        thumbs, abs_ = s.scalars(select(schema.ThumbVote)).all(), s.scalars(select(schema.ABVote)).all()
        assert len(thumbs) == 1 and len(abs_) == 1
        expected = -thumbs[0].value
        record_thumb(s, a, "alice", expected)  # and a later vote still replaces it
    with session_scope(settings.db_url) as s:
        assert [v.value for v in s.scalars(select(schema.ThumbVote))] == [expected]
