"""Meeting notes: decisions and action items quoted with their times, corrections winning, the model's
items kept only where the transcript supports them."""

from __future__ import annotations

from models.asr import Segment, Transcript
from models.notes import Notes, from_model, meeting_notes
from models.transcript_notes import from_transcript

LAUNCH = [
    Segment(0.0, 4.0, "Okay, let's start with the launch.", "Maria"),
    Segment(4.0, 9.0, "We decided to move the launch from March 3 to March 17.", "Maria"),
    Segment(9.0, 12.0, "I'll fix the login bug by March 7.", "David"),
    Segment(12.0, 16.0, "Tom, can you move the marketing email to March 17?", "Maria"),
    Segment(16.0, 18.0, "Sure.", "Tom"),
    Segment(18.0, 24.0, "We approved three testers for $12,000.", "Maria"),
    Segment(24.0, 28.0, "Sorry, we approved $14,000 for the three testers, not $12,000.", "Maria"),
    Segment(28.0, 31.0, "The weather was lovely this weekend.", "Tom"),
]
SOURCE = Transcript(LAUNCH, "en", 1.0, 31.0, "asr").labelled_text()


def test_decisions_and_action_items_are_quoted_with_their_times_owners_and_dates():
    decisions, actions = from_transcript(LAUNCH)
    assert [(d.text, d.start) for d in decisions] == [(LAUNCH[1].text, 4.0), (LAUNCH[6].text, 24.0)]
    assert [(a.owner, a.due, a.start) for a in actions] == [("David", "March 7", 9.0), ("Tom", "March 17", 12.0)]


def test_a_correction_wins_over_the_value_it_corrects():
    decisions, _ = from_transcript(LAUNCH)
    assert not any("$12,000." in d.text and "not" not in d.text for d in decisions)
    assert any("$14,000" in d.text for d in decisions)


def test_a_bare_agreement_quotes_what_it_agrees_to():
    said = [Segment(0.0, 5.0, "Let's book Greenway Buses for the open day.", "Ana"),
            Segment(5.0, 6.0, "Agreed.", "Ben"), Segment(6.0, 9.0, "The weather was lovely.", "Ana")]
    decisions, _ = from_transcript(said)
    assert [(d.text, d.start, d.end) for d in decisions] == [
        ("Let's book Greenway Buses for the open day. Agreed.", 0.0, 6.0)]


def test_the_models_notes_are_kept_where_supported_and_linked_to_the_moment():
    generated = ("The launch moved.\nDecisions:\n- The launch moves to March 17.\n- A refund of $5 million.\n"
                 "Action items:\n- David: fix the login bug, due March 7\n")
    decisions, actions, dropped = from_model(generated, LAUNCH, SOURCE)
    assert [(d.text, d.start) for d in decisions] == [("The launch moves to March 17.", 4.0)]
    assert [(a.owner, a.due, a.start) for a in actions] == [("David", "March 7", 9.0)]
    assert dropped == ["A refund of $5 million."]
    notes = meeting_notes("The launch moved.", generated, LAUNCH, SOURCE)
    assert notes.decisions == decisions and notes.dropped == dropped
    assert Notes.from_dict(notes.as_dict()) == notes


def test_an_agreed_task_the_model_missed_joins_its_action_items_once():
    generated = "Action items:\n- David: fix the login bug, due March 7\n"
    notes = meeting_notes("", generated, LAUNCH, SOURCE)
    assert [(a.owner, a.text, a.start) for a in notes.action_items] == [
        ("David", "Fix the login bug.", 9.0), ("Tom", "Move the marketing email to March 17.", 12.0)]
    both = meeting_notes("", generated + "- Tom: move the marketing email, due March 17\n", LAUNCH, SOURCE)
    assert [a.owner for a in both.action_items] == ["David", "Tom"]
    tom = meeting_notes("", "Action items:\n- Tom: move the marketing email, due March 17\n", LAUNCH, SOURCE)
    assert [a.owner for a in tom.action_items] == ["Tom"]  # David's "I'll ..." alone is only a fallback


def test_without_notes_from_the_model_the_transcripts_own_items_stand():
    notes = meeting_notes("A summary.", "A summary with no sections.", LAUNCH, SOURCE)
    assert len(notes.decisions) == 2 and [a.owner for a in notes.action_items] == ["David", "Tom"]


ASKED = [
    Segment(0.0, 3.0, "Who can take the release notes, Yusuf, maybe you?", "Marco"),
    Segment(3.0, 4.0, "Sure, I'll do it.", "Yusuf"),
    Segment(4.0, 6.0, "When can they be ready?", "Marco"),
    Segment(6.0, 7.0, "By Friday, I think.", "Yusuf"),
    Segment(7.0, 9.0, "Actually, make that Thursday, not Friday.", "Yusuf"),
    Segment(9.0, 11.0, "Rosa, could you book the venue?", "Marco"),
    Segment(11.0, 12.0, "Happy to.", "Rosa"),
]
ASKED_SOURCE = Transcript(ASKED, "en", 1.0, 12.0, "asr").labelled_text()


def test_the_person_asked_who_agreed_owns_the_task_whoever_asked():
    generated = ("Action items:\n- Marco: take the release notes, due Thursday.\n"
                 "- Rosa (owner): book the venue, due happy to.\n")
    _, actions, dropped = from_model(generated, ASKED, ASKED_SOURCE)
    assert [(a.owner, a.text, a.due) for a in actions] == [("Yusuf", "Take the release notes.", "Thursday"),
                                                          ("Rosa", "Book the venue.", "")]
    assert dropped == []


def test_an_item_the_model_gave_no_owner_gets_the_person_asked_and_says_its_date_once():
    generated = "Action items:\n" + "- Who takes the release notes, due Thursday.\n" * 2  # written twice: once
    _, actions, _ = from_model(generated, ASKED, ASKED_SOURCE)
    assert [(a.owner, a.text, a.due) for a in actions] == [("Yusuf", "Who takes the release notes.", "Thursday")]


def test_an_owner_written_with_a_comma_or_a_remark_is_still_the_owner_and_decisions_have_none():
    generated = ("Decisions:\n- Rosa books the venue.\nAction items:\n- Rosa, book the venue, due Thursday.\n"
                 "- Yusuf, also: take the release notes.\n")
    decisions, actions, _ = from_model(generated, ASKED, ASKED_SOURCE)
    assert [(a.owner, a.text, a.due) for a in actions] == [("Rosa", "Book the venue.", ""),  # Thursday: the notes'
                                                          ("Yusuf", "Take the release notes.", "")]
    assert [d.owner for d in decisions] == [""]


def test_an_item_with_a_value_the_meeting_took_back_is_dropped():
    generated = "Decisions:\n- The release notes are due Friday.\nAction items:\n- Marco: book the venue by Friday.\n"
    decisions, actions, dropped = from_model(generated, ASKED, ASKED_SOURCE)
    assert decisions == actions == []
    assert dropped == ["The release notes are due Friday.", "Marco: book the venue by Friday."]


def test_a_due_date_taken_back_becomes_the_one_that_replaced_it_and_one_never_said_goes():
    generated = "Action items:\n- Yusuf: take the release notes, due Friday.\n- Rosa: book the venue, due May 30.\n"
    _, actions, dropped = from_model(generated, ASKED, ASKED_SOURCE)
    assert [(a.owner, a.text, a.due) for a in actions] == [("Yusuf", "Take the release notes.", "Thursday"),
                                                          ("Rosa", "Book the venue.", "")]
    assert dropped == ["Yusuf: take the release notes, due Friday. (its due date was taken back: Thursday instead)",
                       "Rosa: book the venue, due May 30. (its due date dropped, the task kept)"]


def test_an_action_item_whose_owner_the_recording_never_names_keeps_its_task_for_who_was_asked():
    generated = "Action items:\n- Jo: take the release notes, due Thursday.\n- Jo: book the venue for 300 guests.\n"
    _, actions, dropped = from_model(generated, ASKED, ASKED_SOURCE)  # Jo: a name from the prompt's example
    assert [(a.owner, a.text, a.due) for a in actions] == [("Yusuf", "Take the release notes.", "Thursday")]
    assert dropped == ["Jo: take the release notes, due Thursday. (its owner dropped, the task kept)",
                       "Jo: book the venue for 300 guests."]  # the task itself says what was never said


def test_a_correction_for_another_task_does_not_change_a_due_date():
    heard = [*ASKED[:5], Segment(9.0, 11.0, "Rosa, could you book the venue by Friday?", "Marco"),
             Segment(11.0, 12.0, "Happy to.", "Rosa")]  # Friday, taken back for the notes, is the venue's
    source = Transcript(heard, "en", 1.0, 12.0, "asr").labelled_text()
    _, actions, _ = from_model("Action items:\n- Rosa: book the venue, due Friday.\n", heard, source)
    assert [(a.owner, a.due) for a in actions] == [("Rosa", "Friday")]


def test_where_the_recognizer_lost_the_name_the_voice_that_agreed_owns_the_task():
    heard = [Segment(0.0, 3.0, "When, could you pick up the forklift training?", "Oscar"),
             Segment(3.0, 4.0, "Sure, I'll do it.", "Speaker 2")]
    source = Transcript(heard, "en", 1.0, 4.0, "asr").labelled_text()
    _, actions, _ = from_model("Action items:\n- Oscar: pick up the forklift training.\n", heard, source)
    assert [a.owner for a in actions] == ["Speaker 2"]


def test_an_overview_that_gives_a_task_to_someone_else_than_its_owner_loses_that_sentence():
    from models.notes import owners_agree

    generated = "Action items:\n- Marco: take the release notes, due Thursday.\n- Rosa: book the venue.\n"
    _, actions, _ = from_model(generated, ASKED, ASKED_SOURCE)  # the release notes go to Yusuf, who was asked
    overview = "Marco takes the release notes by Thursday. Rosa books the venue. The meeting was short."
    assert owners_agree(overview, generated, actions) == (
        "Rosa books the venue. The meeting was short.", ["Marco takes the release notes by Thursday."])



def test_a_due_date_said_for_another_task_goes_and_a_later_day_said_as_the_one_that_holds_wins():
    heard = [Segment(0.0, 4.0, "Raj, you'll have the crash fix merged by Monday?", "Hannah"),
             Segment(4.0, 6.0, "Monday, yes. Well, Tuesday morning at the latest.", "Raj"),
             Segment(6.0, 8.0, "Tuesday then.", "Hannah"),
             Segment(8.0, 12.0, "Tom, could you update the invitations by next Wednesday?", "Hannah"),
             Segment(12.0, 13.0, "Will do.", "Tom"),
             Segment(13.0, 16.0, "And I'll call the caterer about the menu. Thanks, both.", "Hannah")]
    source = Transcript(heard, "en", 1.0, 16.0, "asr").labelled_text()
    generated = ("Action items:\n- Raj: merge the crash fix by Monday.\n- Tom: update the invitations, due next "
                 "Wednesday.\n- Hannah: call the caterer about the menu, due next Wednesday.\n")
    _, actions, dropped = from_model(generated, heard, source)
    assert [(a.owner, a.text, a.due) for a in actions] == [
        ("Raj", "Merge the crash fix by Tuesday.", "Tuesday"), ("Tom", "Update the invitations.", "next Wednesday"),
        ("Hannah", "Call the caterer about the menu.", "")]
    assert dropped == ["Raj: merge the crash fix by Monday. (its due date was taken back: Tuesday instead)",
                       "Hannah: call the caterer about the menu, due next Wednesday. (its due date was not said "
                       "with its task)"]


def test_a_due_date_its_exchange_never_says_becomes_the_one_it_does():
    heard = [Segment(0.0, 3.0, "Who can take the tenant letter, Tamar, maybe you?", "Ana"),
             Segment(3.0, 4.0, "Sure, I'll do it.", "Tamar"),
             Segment(4.0, 6.0, "And when can the tenant letter be ready?", "Ana"),
             Segment(6.0, 7.0, "By Friday, I think.", "Tamar"),
             Segment(7.0, 9.0, "Rosa, could you book the site visit for Monday?", "Ana"),
             Segment(9.0, 10.0, "Happy to.", "Rosa")]  # Monday: the next task's
    source = Transcript(heard, "en", 1.0, 10.0, "asr").labelled_text()
    _, actions, dropped = from_model("Action items:\n- Tamar: the tenant letter, due Monday.\n", heard, source)
    assert [(a.owner, a.due) for a in actions] == [("Tamar", "Friday")]
    assert dropped == ["Tamar: the tenant letter, due Monday. (its due date was not said with its task: Friday was)"]


CHOICE = [
    Segment(0.0, 3.0, "So which venue do we go with?", "Ana"),
    Segment(3.0, 5.0, "Greenway Hall.", "Ben"),
    Segment(5.0, 7.0, "Agreed, Greenway Hall it is.", "Ana"),
    Segment(7.0, 10.0, "Is the gala date fixed?", "Ben"),
    Segment(10.0, 12.0, "It's the 9th of May.", "Ana"),
    Segment(12.0, 14.0, "Sorry, it's the 12th of May now, not the 9th.", "Ana"),
    Segment(14.0, 17.0, "Ben, could you book the band?", "Ana"),
    Segment(17.0, 18.0, "Sure, by Friday.", "Ben"),
]
CHOICE_SOURCE = Transcript(CHOICE, "en", 1.0, 18.0, "asr").labelled_text()


def test_a_question_answered_that_the_models_decisions_miss_joins_them():
    notes = meeting_notes("", "Decisions:\n- Greenway Hall is the venue.\n", CHOICE, CHOICE_SOURCE)
    assert [(d.text, d.start) for d in notes.decisions] == [
        ("Greenway Hall is the venue.", 3.0),
        ("Is the gala date fixed: Sorry, it's the 12th of May now, not the 9th.", 7.0)]


def test_a_focus_question_is_answered_by_the_notes_item_about_it_without_the_value_it_took_back():
    notes = meeting_notes("", "", CHOICE, CHOICE_SOURCE)
    assert notes.answer("When is the gala?") == "Is the gala date fixed: Sorry, it's the 12th of May now."
    assert notes.answer("Who is booking the band?") == "Ben: book the band, due Friday."
    assert notes.answer("Which venue did we choose?") == "So which venue do we go with: Agreed, Greenway Hall it is."
    assert notes.answer("How was the weather?") == ""
