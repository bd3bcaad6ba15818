"""The facts benchmark's meetings and its rule-based checks (right, wrong, absent; focus answers)."""

from __future__ import annotations

from bench.facts import Fact, Meeting, answer_right, check, meetings, said_anywhere

MEETING = Meeting("m", 3, ["Ana", "Ben", "Chloe"], [], [
    Fact("owner", "press release", "ben", "chloe", "Who owns the press release?"),
    Fact("date", "launch", "may 20", "may 15", "When is the product launch?"),
    Fact("amount", "redesign", "40000", "", "How much was approved for the website redesign?"),
    Fact("deadline", "budget report", "friday", "", "When is the budget report due?"),
    Fact("decision", "hosting", "contoso", "northwind", "Which hosting vendor did we choose?"),
])


def test_twelve_meetings_of_two_to_twenty_five_minutes_with_corrections_stated_in_their_words():
    found = meetings()
    assert len(found) == 12 and {len(m.speakers) for m in found} == {2, 3, 4, 5}
    assert min(m.minutes for m in found) == 2 and max(m.minutes for m in found) == 25
    assert sum(bool(f.superseded) for m in found for f in m.facts) >= 6
    for m in found:
        said = " ".join(t for _, t in m.turns).lower()
        for f in m.facts:
            assert all(w in said for w in f.subject.split())
            if f.kind in ("owner", "deadline", "decision"):
                assert f.value in said
        assert len(m.questions) == 2
    assert meetings() == found  # seeded: the same meetings every time


def test_facts_stated_right_wrong_or_not_at_all():
    summary = ("Ben will write the press release. The product launch moved to the twentieth of May. "
               "The team approved forty thousand dollars for the redesign. The budget report is due Monday. "
               "Nothing about vendors.")
    assert check(summary, MEETING) == {"press release": "right", "launch": "right", "redesign": "right",
                                       "budget report": "wrong", "hosting": "absent"}


def test_a_superseded_value_or_another_participant_is_wrong():
    summary = "Chloe owns the press release. The launch is on May 15. The hosting vendor is Northwind."
    assert check(summary, MEETING) | {} == {"press release": "wrong", "launch": "wrong", "redesign": "absent",
                                            "budget report": "absent", "hosting": "wrong"}
    assert check("We spent $25,000 on the redesign.", MEETING)["redesign"] == "wrong"


def test_a_focus_answer_is_right_only_with_the_right_value_and_without_the_old_one():
    launch = MEETING.facts[1]
    assert answer_right("The launch is on May 20th.", launch)
    assert not answer_right("The launch moved from May 15 to May 20.", launch)
    assert not answer_right("The launch is in May.", launch)


def test_a_transcript_says_a_fact_only_with_its_subject_and_its_value_somewhere():
    heard = ("Ben, can you take the press release? Sure. The launch is in May, on the twentieth. "
             "The budget report is due on Fry Day.")
    assert said_anywhere(heard, MEETING) == 2  # press release and launch; the recognizer lost "Friday"


def test_by_default_the_benchmark_runs_the_student_only_where_one_is_served(settings, tmp_path):
    from bench.facts import default_systems
    from storage import registry
    from storage.db import session_scope

    assert default_systems(settings) == ("cascade", "transcript")  # a fresh install serves no student
    with session_scope(settings.db_url) as session:
        registry.promote(session, registry.register(session, name="sft-1", kind="student", stage="sft",
                                                    checkpoint=tmp_path))
    assert default_systems(settings) == ("cascade", "transcript", "student")
