"""History: each owner sees only their own summaries, newest first, and can search them."""

import pytest

from storage.db import session_scope
from storage.history import NotFound, find_summaries, owned_summary, thumb_of
from storage.votes import record_thumb
from tests.conftest import add_summary


def found(settings, owner: str, text: str = "") -> list[int]:
    with session_scope(settings.db_url) as s:
        return [item.summary_id for item in find_summaries(s, owner, text)]


def test_newest_first_and_only_the_owners(settings):
    first = add_summary(settings, "browser:a", "Budget approved.", "We approve the budget.", name="monday.wav")
    add_summary(settings, "browser:b", "Someone else's meeting.")
    second = add_summary(settings, "browser:a", "Launch moved.", name="tuesday.wav", query="When is the launch?")
    assert found(settings, "browser:a") == [second, first]
    assert found(settings, "browser:nobody") == []


def test_search_covers_name_question_summary_and_transcript_case_blind(settings):
    budget = add_summary(settings, "user:ann", "Budget approved.", "Sarah proposed forty thousand dollars.",
                         name="monday.wav")
    launch = add_summary(settings, "user:ann", "Launch moved.", "The launch moves to May.", name="tuesday.wav",
                         query="When is the LAUNCH?")
    assert found(settings, "user:ann", "TUESDAY") == [launch]
    assert found(settings, "user:ann", "launch") == [launch]
    assert found(settings, "user:ann", "sarah") == [budget]
    assert found(settings, "user:ann", "approved") == [budget]
    assert found(settings, "user:ann", "  ") == [launch, budget]
    assert found(settings, "user:bob", "budget") == []


def test_search_wildcards_are_literal(settings):
    percent = add_summary(settings, "user:ann", "Growth was 50% this year.")
    add_summary(settings, "user:ann", "Growth was 50 units.", name="other.wav")
    assert found(settings, "user:ann", "50%") == [percent]
    assert found(settings, "user:ann", "_") == []


def test_owned_summary_hides_other_owners_and_missing_ids(settings):
    mine = add_summary(settings, "user:ann", "Mine.")
    with session_scope(settings.db_url) as s:
        assert owned_summary(s, mine, "user:ann").text == "Mine."
        for owner, sid in (("user:bob", mine), ("user:ann", mine + 100)):
            with pytest.raises(NotFound, match=f"summary {sid} was not found"):
                owned_summary(s, sid, owner)


def test_thumb_of_reads_the_current_vote(settings):
    sid = add_summary(settings, "user:ann", "Mine.")
    with session_scope(settings.db_url) as s:
        assert thumb_of(s, sid, "user:ann") is None
        record_thumb(s, sid, "user:ann", 1)
        record_thumb(s, sid, "user:ann", -1)
        assert thumb_of(s, sid, "user:ann") == -1
        assert thumb_of(s, sid, "user:bob") is None


def test_recordings_left_without_a_summary_are_found_for_their_owner_only(settings):
    from sqlalchemy import delete

    from storage import schema
    from storage.history import unsummarized

    kept = add_summary(settings, "ann", "Kept.", name="kept.wav")
    cut = add_summary(settings, "ann", "Killed halfway.", name="cut.wav")
    add_summary(settings, "bob", "Bob's.", name="cut.wav")
    with session_scope(settings.db_url) as s:
        s.execute(delete(schema.Summary).where(schema.Summary.id.in_([cut, cut + 1])))
    with session_scope(settings.db_url) as s:
        assert [r.original_name for r in unsummarized(s, "ann")] == ["cut.wav"]
        assert [r.original_name for r in unsummarized(s, "bob")] == ["cut.wav"]
        assert kept and unsummarized(s, "carl") == []
