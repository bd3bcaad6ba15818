"""Notes read off the transcript: an agreed request is the action item, owned by who was asked and due as
finally corrected in the exchange that follows; a decision that points back says the value it points at."""

from __future__ import annotations

from models.asr import Segment
from models.transcript_notes import from_transcript

EXCHANGE = [
    Segment(0.0, 3.0, "Marco, could you pick up the guest list?", "Ana"),
    Segment(3.0, 4.0, "Sure, I'll do it.", "Speaker 2"),
    Segment(4.0, 6.0, "And when can the guest list be ready?", "Ana"),
    Segment(6.0, 7.0, "By Monday, I think.", "Speaker 2"),
    Segment(7.0, 9.0, "Actually, make that Friday, not Monday.", "Speaker 2"),
    Segment(9.0, 12.0, "Marco, could you pick up the seating plan?", "Ana"),
    Segment(12.0, 13.0, "Yes, leave it with me.", "Speaker 2"),
    Segment(13.0, 15.0, "What did the quote come to for the venue deposit?", "Ana"),
    Segment(15.0, 16.0, "$7,500.", "Speaker 2"),
    Segment(16.0, 18.0, "Fine, we approve that for the venue deposit.", "Ana"),
]


def test_an_agreed_request_is_the_action_item_as_its_task_and_an_agreement_alone_is_none():
    _, actions = from_transcript(EXCHANGE)  # two tasks of one owner are two items
    assert [(a.owner, a.text, a.start) for a in actions] == [("Marco", "Pick up the guest list.", 0.0),
                                                             ("Marco", "Pick up the seating plan.", 9.0)]


def test_a_due_date_said_in_the_exchange_that_follows_counts_as_finally_corrected():
    _, actions = from_transcript(EXCHANGE)
    assert [a.due for a in actions] == ["Friday", ""]
    misheard = [*EXCHANGE[:4], Segment(7.0, 9.0, "Actually, make at Friday not Monday.", "Speaker 2")]
    assert [a.due for a in from_transcript(misheard)[1]] == ["Friday"]
    later = [*EXCHANGE[:4], Segment(7.0, 9.0, "Well, Wednesday at the latest.", "Speaker 2")]
    assert [a.due for a in from_transcript(later)[1]] == ["Wednesday"]
    lost = [*EXCHANGE[:4], Segment(7.0, 9.0, "Actually, make at first day, not Monday.", "Speaker 2")]
    assert [a.due for a in from_transcript(lost)[1]] == ["Monday"]  # the day it took back is not the new one


def test_a_decision_that_points_back_says_the_value_it_points_at():
    said = [Segment(0.0, 2.0, "The florist sent her quote.", "Ana"), Segment(2.0, 3.0, "It came to $900.", "Ben"),
            Segment(3.0, 5.0, "Fine, we approve that for the flowers.", "Ana")]
    decisions, _ = from_transcript(said)
    assert [(d.text, d.start) for d in decisions] == [("Fine, we approve that for the flowers: It came to $900.", 2.0)]


def test_a_question_asked_and_answered_is_a_decision_as_finally_settled():
    decisions, _ = from_transcript(EXCHANGE)  # with the approval that follows it
    assert [(d.text, d.start, d.end) for d in decisions] == [
        ("What did the quote come to for the venue deposit: $7,500. Fine, we approve that for the venue deposit.",
         13.0, 18.0)]
    caterer = [Segment(0.0, 2.0, "Right, which caterer are we using?", "Ana"),
               Segment(2.0, 4.0, "Harbor Kitchen, they were cheapest.", "Ben"),
               Segment(4.0, 6.0, "Harbor is booked that week. How about Saffron Table?", "Ana"),
               Segment(6.0, 8.0, "Then Saffron Table, not Harbor Kitchen.", "Ben"), Segment(8.0, 9.0, "Agreed.", "Ana")]
    assert [d.text for d in from_transcript(caterer)[0]] == [
        "Right, which caterer are we using: Then Saffron Table, not Harbor Kitchen. Agreed."]
    # heard without "?", and followed by another date's question: each answer stays with its own question
    dates = [Segment(0.0, 2.0, "And is the kickoff date set.", "Ana"), Segment(2.0, 3.0, "The 2nd of March.", "Ben"),
             Segment(3.0, 4.0, "Okay.", "Ana"), Segment(4.0, 6.0, "Is the review date confirmed.", "Ana"),
             Segment(6.0, 7.0, "The 8th of April.", "Ben"), Segment(7.0, 8.0, "I heard it moved to the 11th.", "Cy"),
             Segment(8.0, 9.0, "Yes, April 11th now, not the 8th.", "Ben")]
    assert [d.text for d in from_transcript(dates)[0]] == [
        "And is the kickoff date set: The 2nd of March.",
        "Is the review date confirmed: Yes, April 11th now, not the 8th."]


def test_a_question_with_no_value_in_its_answer_is_no_decision():
    chatter = [Segment(0.0, 2.0, "What did you all think of the demo?", "Ana"),
               Segment(2.0, 3.0, "It was really good.", "Ben"), Segment(3.0, 4.0, "Right, on we go.", "Ana")]
    assert from_transcript(chatter)[0] == []


def test_a_name_said_at_the_end_of_the_question_before_maybe_you_owns_the_task():
    heard = [Segment(0.0, 3.0, "Who can take the new shelf layout, Yusuf?", "Ana"),
             Segment(3.0, 4.0, "Maybe you?", "Ana"), Segment(4.0, 5.0, "Sure, I'll do it.", "Speaker 2")]
    assert [(a.owner, a.text) for a in from_transcript(heard)[1]] == [("Yusuf", "Take the new shelf layout.")]


def test_a_name_said_on_its_own_before_maybe_you_owns_the_task_said_before_it():
    heard = [Segment(0.0, 2.0, "Who can take the support macros?", "Ana"), Segment(2.0, 3.0, "Freya.", "Ana"),
             Segment(3.0, 4.0, "Maybe you?", "Ana"), Segment(4.0, 5.0, "Sure.", "Speaker 2")]
    assert [(a.owner, a.text) for a in from_transcript(heard)[1]] == [("Freya", "Take the support macros.")]
    misheard = [Segment(0.0, 2.0, "Who can take the insurance renewal?", "Ana"), Segment(2.0, 3.0, "When?", "Ana"),
                Segment(3.0, 4.0, "Maybe you.", "Ana"), Segment(4.0, 5.0, "Yes, leave it with me.", "Speaker 2")]
    assert [(a.owner, a.text) for a in from_transcript(misheard)[1]] == [("Speaker 2", "Take the insurance renewal.")]
    assert from_transcript(misheard[1:])[1] == []  # nothing to do is said: no item


def test_an_answer_changed_with_make_that_is_settled_at_the_new_value():
    refund = [Segment(0.0, 2.0, "And what refund did we offer them?", "Sam"),
              Segment(2.0, 4.0, "We offered $200 in credit.", "Joe"),
              Segment(4.0, 6.0, "Let's make that $500. They've been patient with us.", "Sam")]
    assert [d.text for d in from_transcript(refund)[0]] == ["And what refund did we offer them: Let's make that $500."]


def test_a_name_after_and_or_said_before_the_request_owns_it_and_today_is_a_due_date():
    heard = [Segment(0.0, 3.0, "And Priya, can you collect the dietary requirements?", "Lena"),
             Segment(3.0, 4.0, "Yes, no problem.", "Speaker 2"), Segment(4.0, 5.0, "Right, Joe.", "Lena"),
             Segment(5.0, 7.0, "Can you ask Nina for a fix date?", "Lena"),
             Segment(7.0, 9.0, "Yes, I'll ask her this afternoon.", "Speaker 3"),
             Segment(9.0, 11.0, "Marcus, could you send the invites?", "Lena"),
             Segment(11.0, 12.0, "Sure, I'll send them today.", "Speaker 4")]
    assert [(a.owner, a.text, a.due) for a in from_transcript(heard)[1]] == [
        ("Priya", "Collect the dietary requirements.", ""), ("Joe", "Ask Nina for a fix date.", "this afternoon"),
        ("Marcus", "Send the invites.", "today")]


def test_an_answer_asked_again_is_settled_by_the_new_answer_of_its_own_kind():
    said = [Segment(0.0, 2.0, "What's the budget for the trade fair stand?", "Olivia"),
            Segment(2.0, 3.0, "$8,000.", "Ken"),
            Segment(3.0, 5.0, "Wait, is the stand budget still $8,000 or did finance cut it?", "Olivia"),
            Segment(5.0, 6.0, "They cut it.", "Ken"), Segment(6.0, 7.0, "It's $6,500.", "Ken"),
            Segment(7.0, 9.0, "Okay, and when is the trade fair?", "Olivia"),
            Segment(9.0, 10.0, "The ninth of June.", "Ken"), Segment(10.0, 11.0, "I thought it was earlier.", "Olivia"),
            Segment(11.0, 12.0, "You're right.", "Ken"), Segment(12.0, 13.0, "Sorry, it's the second of June.", "Ken")]
    assert [d.text for d in from_transcript(said)[0]] == [
        "What's the budget for the trade fair stand: It's $6,500.",
        "Okay, and when is the trade fair: Sorry, it's the second of June."]
