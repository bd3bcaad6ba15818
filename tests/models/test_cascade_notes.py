"""The cascade with an LM that writes the notes itself (the packaged Qwen): the calls it makes, what it
keeps, and how a long recording's chapters and a focus question are handled. The LM's replies are
scripted on the tiny random-weight model, so each rule is checked on a known reply."""

from __future__ import annotations

import pytest

from models.asr import Transcript
from models.cascade import CascadeSummarizer
from models.llm import Decoding
from models.notes import merge_notes
from tests.models.test_summarizer import MEETING, long_meeting, tiny_llm  # noqa: F401 (fixture)

NOTES = """Decisions:
- We spend $40,000 on the mobile app redesign.
- A refund of $3 million.

Action items (owner: task, due date):
- Priya: investigate the slow login page.
- Sarah: book a hotel in Zurich, due Friday.
Summary: The team decided to hire two backend engineers for the mobile app."""


@pytest.fixture
def script(tiny_llm, monkeypatch):  # noqa: F811
    """Replies the scripted notes (or the given replies in turn) and records each call's messages."""
    calls: list[list[dict]] = []
    replies: list[str] = []

    def chat(messages, decoding):
        calls.append(messages)
        return replies.pop(0) if replies else NOTES

    monkeypatch.setattr(tiny_llm, "chat", chat)
    return calls, replies


def short() -> Transcript:
    return Transcript(list(MEETING), "en", 1.0, 19.0, "asr-test")


def test_a_short_recording_gets_one_call_and_grounded_notes(tiny_llm, script):  # noqa: F811
    calls, _ = script
    summary = CascadeSummarizer(tiny_llm, notes=True).summarize(short(), decoding=Decoding(max_new_tokens=40))
    assert len(calls) == 1 and calls[0][0]["role"] == "system" and "Sarah proposed" in calls[0][1]["content"]
    assert summary.text == "The team decided to hire two backend engineers for the mobile app."
    notes = summary.notes
    assert notes["overview"] == summary.text
    assert [d["text"] for d in notes["decisions"]] == ["We spend $40,000 on the mobile app redesign."]
    assert notes["decisions"][0]["start"] == 2.0  # linked to the sentence that said it
    # the transcript has no such amount, and no Zurich or Friday
    assert notes["dropped"] == ["A refund of $3 million.", "Sarah: book a hotel in Zurich, due Friday."]
    assert [(a["owner"], a["text"], a["start"]) for a in notes["action_items"]] == [
        ("Priya", "Investigate the slow login page.", 15.0)]
    assert summary.decoding["max_new_tokens"] >= 300 and summary.raw == NOTES
    # items share their form, and digits are tokens: "- 22,000 dollars approved for the" may follow
    # "- 18,000 dollars approved for the" (a 4-gram ban made it "22,00" and prose)
    assert summary.decoding["no_repeat_ngram_size"] >= 12


def test_an_overview_with_nothing_supported_gives_way_to_the_decisions(tiny_llm, script):  # noqa: F811
    _, replies = script
    replies.append(NOTES.replace("two backend engineers", "two engineers from Zurich for $2 million"))
    summary = CascadeSummarizer(tiny_llm, notes=True).summarize(short())
    assert summary.text == "We spend $40,000 on the mobile app redesign."
    assert any("Zurich" in d for d in summary.dropped)


def test_a_focus_question_is_answered_in_its_own_call_and_the_notes_keep_the_overview(tiny_llm, script):  # noqa: F811
    calls, replies = script
    replies += [NOTES, "Priya investigates the slow login page."]
    summary = CascadeSummarizer(tiny_llm, notes=True).summarize(short(), query="Who looks at the login page?")
    assert len(calls) == 2 and "Question: Who looks at the login page?" in calls[1][1]["content"]
    assert "Sarah proposed" in calls[1][1]["content"]  # a short recording's answer reads the transcript
    assert summary.text == "Priya investigates the slow login page." and summary.query == "Who looks at the login page?"
    assert summary.notes["overview"].startswith("The team decided")


def test_a_long_recording_gets_notes_per_chapter_merged_and_one_overview(tiny_llm, script):  # noqa: F811
    calls, _ = script
    transcript = Transcript(long_meeting(), "en", 1.0, 1200.0, "asr")
    summary = CascadeSummarizer(tiny_llm, notes=True).summarize(transcript)
    chapters = len(summary.chapters)
    assert 3 <= chapters <= 5 and len(calls) == chapters + 1  # a call per chapter, then the overview's
    assert "The team decided to hire" in calls[-1][0]["content"]  # made from the chapters' summaries
    assert {a["owner"] for a in summary.notes["action_items"]} == {"Priya"}
    merged = merge_notes([NOTES, NOTES.replace("Priya", "Tom")])
    assert merged.count("Decisions:") == 1 and merged.count("- We spend $40,000") == 1  # said in both: once
    assert merged.count("- Priya:") == 1 and merged.count("- Tom:") == 1


def test_a_chapter_is_read_in_windows_that_overlap_and_their_notes_get_one_overview(tiny_llm, script, monkeypatch):  # noqa: F811
    from models import cascade
    from models.asr import Segment

    turns = [Segment(i, i + 1, f"S{i % 2}: turn {i} " + "word " * 20, f"S{i % 2}") for i in range(10)]
    windows = cascade.notes_windows(turns, 120, lambda text: len(text.split()))  # 23 words a turn
    assert len(windows) == 3 and windows[0].splitlines() == [t.text for t in turns[:5]]
    for before, after in zip(windows, windows[1:]):  # a question at a window's end is read with its answer
        assert after.splitlines()[:2] == before.splitlines()[-2:]
    assert windows[-1].splitlines()[-1] == turns[-1].text
    calls, _ = script
    monkeypatch.setattr(cascade, "NOTES_WINDOW_TOKENS", 30)
    summary = CascadeSummarizer(tiny_llm, notes=True).summarize(short())
    assert len(calls) >= 3 and "The team decided to hire" in calls[-1][0]["content"]  # windows, then the overview
    assert [d["text"] for d in summary.notes["decisions"]] == ["We spend $40,000 on the mobile app redesign."]


def test_a_focus_question_on_a_long_recording_reads_the_chapters_that_share_its_words():
    from models.asr import Segment
    from models.cascade import relevant_text

    def chapter(start: float, lines: list[str]) -> list[Segment]:
        return [Segment(start + 10 * i, start + 10 * i + 8, line) for i, line in enumerate(lines)]

    sections = [chapter(0, ["Welcome everyone.", "The budget review is next week."]),
                chapter(300, ["The vendor contract goes to Paylane.", "Signed by Friday."]),
                chapter(600, ["Lunch was good.", "The budget is fine."]),
                chapter(900, ["About the vendor contract: Finlo instead, we changed our minds."])]
    transcript = Transcript([s for part in sections for s in part], "en", 1.0, 960.0, "asr")
    words = lambda text: len(text.split())  # noqa: E731
    read = relevant_text(transcript, sections, "Which vendor gets the contract?", 1000, words)
    assert read.index("Paylane") < read.index("Finlo") and "Lunch" not in read  # both mentions, in time order
    assert "Paylane" not in relevant_text(transcript, sections, "Which vendor gets the contract?", 12, words)
    assert relevant_text(transcript, sections, "Who won the football?", 1000, words) == ""


def test_another_focus_question_on_the_same_recording_costs_one_call(tiny_llm, script):  # noqa: F811
    calls, _ = script
    cascade = CascadeSummarizer(tiny_llm, notes=True)
    first = cascade.summarize(short())
    asked = cascade.summarize(short(), query="Who looks at the login page?")
    assert len(calls) == 2 and "Question:" in calls[1][1]["content"]  # the notes were kept, not written again
    assert asked.notes["decisions"] == first.notes["decisions"]
    cascade.summarize(short(), decoding=Decoding(do_sample=True, seed=3))
    assert len(calls) == 3  # a sampled decoding writes its own
