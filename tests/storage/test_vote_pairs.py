"""Users' votes become DPO pairs, on SQLite and PostgreSQL: A/B sides, thumbs up x down, ties skipped, ids kept."""

from __future__ import annotations

from storage.db import session_scope
from storage.feedback import vote_pairs
from storage.votes import record_ab, record_thumb
from tests.conftest import add_summary


def test_votes_give_pairs_with_their_vote_ids(settings):
    good = add_summary(settings, "ann", "The budget was approved.", query="Budget?")
    bad = add_summary(settings, "ann", "They went to Tokyo.", query="Budget?")
    tie_a = add_summary(settings, "ann", "A.", name="other.wav")
    tie_b = add_summary(settings, "ann", "B.", name="other.wav")
    other_query = add_summary(settings, "ann", "Unrelated.", query="Who leads?")
    with session_scope(settings.db_url) as s:
        ab = record_ab(s, bad, good, "ann", "right")  # good was on the right
        record_ab(s, tie_a, tie_b, "ann", "tie")
        record_ab(s, tie_b, tie_a, "bob", "both_bad")
        up = record_thumb(s, good, "ann", 1)
        down = record_thumb(s, bad, "bob", -1)
        record_thumb(s, other_query, "ann", -1)  # another query: no pair with the thumbs-up
        ids = ab.id, up.id, down.id
    with session_scope(settings.db_url) as s:
        pairs = vote_pairs(s)
    assert [(p.source, p.chosen, p.rejected, p.vote_ids) for p in pairs] == [
        ("ab", "The budget was approved.", "They went to Tokyo.", [f"ab:{ids[0]}"]),
        ("thumbs", "The budget was approved.", "They went to Tokyo.", [f"thumb:{ids[1]}", f"thumb:{ids[2]}"]),
    ]
    assert all(p.query == "Budget?" and p.audio == "/nowhere" for p in pairs)


def test_the_generated_text_is_preferred_over_the_grounded_one(settings):
    a = add_summary(settings, "ann", "Shown A.")
    b = add_summary(settings, "ann", "Shown B.")
    with session_scope(settings.db_url) as s:
        from storage import schema

        s.get(schema.Summary, a).raw = "Generated A, with a dropped sentence."
        record_ab(s, a, b, "ann", "left")
    with session_scope(settings.db_url) as s:
        (pair,) = vote_pairs(s)
    assert (pair.chosen, pair.rejected) == ("Generated A, with a dropped sentence.", "Shown B.")
