"""The cascade summarizer on a tiny random-weight Llama with a word-level tokenizer built here."""

from __future__ import annotations

import re
import time

import pytest

from models.asr import Segment, Transcript
from models.cascade import CascadeSummarizer, chunk_segments
from models.llm import ChatLM, Decoding
from models.summarizer import grounded_summary, key_points
from tests.helpers.tiny import tiny_chat_lm

MEETING = [
    Segment(0.0, 2.0, "Good morning everyone."),
    Segment(2.0, 6.0, "Sarah proposed that we spend $40,000 on the mobile app redesign."),
    Segment(6.0, 8.0, "Second item is hiring."),
    Segment(8.0, 12.0, "We decided to hire two backend engineers for the mobile app."),
    Segment(12.0, 15.0, "The weather was nice and people liked the coffee machine."),
    Segment(15.0, 19.0, "Priya will investigate the slow login page of the mobile app."),
]


@pytest.fixture(scope="module")
def tiny_llm() -> ChatLM:
    corpus = [s.text for s in MEETING] + ["Summarize the following text in three sentences, focusing on this question:"]
    model, tokenizer = tiny_chat_lm(corpus)
    return ChatLM(model, tokenizer, version="tiny-test")


@pytest.fixture
def prompts(tiny_llm, monkeypatch) -> list[str]:
    """Records the prompt of every call the summarizer makes to the tiny LLM."""
    seen: list[str] = []
    original = tiny_llm.chat

    def recording_chat(messages, decoding):
        seen.append(messages[0]["content"])
        return original(messages, decoding)

    monkeypatch.setattr(tiny_llm, "chat", recording_chat)
    return seen


def transcript() -> Transcript:
    return Transcript(list(MEETING), "en", 1.0, 19.0, "asr-test")


def test_key_points_prefer_facts_and_skip_filler():
    points = key_points(MEETING, k=3)
    assert [p["start"] for p in points] == [2.0, 8.0, 15.0]  # time order, no filler, no small talk
    assert points[0] == {"text": MEETING[1].text, "start": 2.0, "end": 6.0}


def test_focus_question_pulls_its_topic_into_the_key_points():
    points = key_points(MEETING, k=1, query="What did people say about the coffee machine?")
    assert [p["start"] for p in points] == [12.0]


def test_chunks_respect_the_budget_and_keep_every_word():
    count = lambda text: len(text.split())  # noqa: E731
    long = Segment(19.0, 40.0, " ".join(f"w{i}" for i in range(30)))
    chunks = chunk_segments([*MEETING, long], max_tokens=12, count=count)
    assert all(count(c) <= 12 for c in chunks)
    assert " ".join(chunks).split() == " ".join(s.text for s in [*MEETING, long]).split()


def test_summary_records_version_decoding_and_grounded_key_points(tiny_llm):
    summary = CascadeSummarizer(tiny_llm, n_key_points=2).summarize(transcript(), decoding=Decoding(max_new_tokens=12))
    assert summary.system == "cascade" and summary.model_version == "tiny-test"
    assert summary.decoding["max_new_tokens"] == 12 and summary.decoding["do_sample"] is False
    assert summary.text  # never empty: falls back to transcript sentences if every sentence was dropped
    assert summary.key_points == key_points(MEETING, 2)
    assert {p["text"] for p in summary.key_points} <= {s.text for s in MEETING}  # verbatim, never invented


def test_long_transcripts_are_summarized_in_chunks_then_merged(tiny_llm, prompts):
    progress = []
    CascadeSummarizer(tiny_llm, chunk_tokens=25).summarize(
        transcript(), decoding=Decoding(max_new_tokens=6), progress=lambda f, m: progress.append(f)
    )
    assert len(prompts) >= 3  # at least two chunks plus the merge
    assert progress == sorted(progress) and progress[-1] == 1.0


def test_greedy_is_reproducible_and_seeded_sampling_too(tiny_llm):
    s = CascadeSummarizer(tiny_llm)
    greedy = [s.summarize(transcript(), decoding=Decoding(max_new_tokens=10)).text for _ in range(2)]
    sampled = [s.summarize(transcript(), decoding=Decoding(max_new_tokens=10, do_sample=True, seed=7)).text
               for _ in range(2)]
    assert greedy[0] == greedy[1]
    assert sampled[0] == sampled[1]


def test_focus_question_goes_into_the_prompt(tiny_llm, prompts):
    summary = CascadeSummarizer(tiny_llm).summarize(transcript(), query="  Who will hire?  ",
                                                    decoding=Decoding(max_new_tokens=4))
    assert summary.query == "Who will hire?"
    assert prompts[0].startswith("Summarize the following text in three sentences, focusing on this question: Who will hire?")


def test_sentence_units_regroup_segments_into_whole_sentences():
    from models.asr import sentence_units

    segs = [Segment(0.0, 3.0, "We met. The budget is"), Segment(3.0, 5.0, "approved for May."), Segment(5.0, 6.0, "and then")]
    units = [(u.start, u.end, u.text) for u in sentence_units(segs)]
    assert units == [(0.0, 3.0, "We met."), (0.0, 5.0, "The budget is approved for May."), (5.0, 6.0, "and then")]


def long_meeting(minutes: int = 20) -> list[Segment]:
    """A segment every 10 s, with a long pause every 4.5 minutes (where a chapter should end)."""
    segments, t = [], 0.0
    while t < minutes * 60:
        segments.append(Segment(t, t + 8.0, MEETING[len(segments) % len(MEETING)].text))
        t += 10.0 if (len(segments) % 27) else 25.0
    return segments


def test_chapters_of_a_long_recording_end_at_its_longest_pauses():
    from models.chapters import spans

    segments = long_meeting()
    sections = spans(segments)
    assert 3 <= len(sections) <= 5 and sum(map(len, sections)) == len(segments)
    for before, after in zip(sections, sections[1:]):
        assert after[0].start - before[-1].end == pytest.approx(17.0)  # the 25 s step: a 17 s pause
    assert spans(segments[:30]) == [segments[:30]]  # five minutes is one section


def test_a_long_recording_gets_grounded_chapters_and_an_overall_summary_of_them(tiny_llm, prompts, monkeypatch):
    made_up = "I'm thrilled to introduce you to our wonderful new colleagues at the company picnic."
    replies = iter(["Sarah proposed $40,000 for the mobile app redesign."] * 4 + [made_up, made_up])
    monkeypatch.setattr(tiny_llm, "chat", lambda messages, decoding: (prompts.append(messages[0]["content"]),
                                                                       next(replies))[1])
    transcript = Transcript(long_meeting(), "en", 1.0, 1200.0, "asr")
    summary = CascadeSummarizer(tiny_llm, chunk_tokens=100_000).summarize(transcript)
    assert 3 <= len(summary.chapters) <= 5
    assert summary.chapters[0]["start"] == 0.0 and summary.chapters[-1]["end"] == transcript.segments[-1].end
    assert all(c["summary"] for c in summary.chapters)
    assert made_up not in summary.text and made_up in summary.dropped  # the drifted overall summary is dropped
    assert "Sarah proposed $40,000" in prompts[-1]  # the overall summary is made from the chapters'


def test_drop_repeats_keeps_each_thing_said_once():
    from models.grounding import drop_repeats

    text = ("The company will request a refund. Tom fixes the login bug. The company will request a refund. "
            "the company will also request a refund! The refund was discussed.")
    kept, repeats = drop_repeats(text)
    assert kept == "The company will request a refund. Tom fixes the login bug. The refund was discussed."
    assert len(repeats) == 2


@pytest.mark.parametrize("reply", [
    "We decided to hire two backend engineers. We decided to hire two backend engineers.",
    "Priya will investigate the slow login page. Sarah proposed the redesign. Priya will investigate the slow "
    "login page. Sarah proposed the redesign. Priya will investigate the slow login page.",
    "Salesman 1: Hey, all! Salesman 1: Hey, all! Salesman 1: Hey, all!",
])
def test_a_summary_never_holds_the_same_sentence_twice(tiny_llm, monkeypatch, reply):
    from models.grounding import normalize, sentences

    asked: list[Decoding] = []

    def looping_chat(messages, decoding):
        asked.append(decoding)
        return reply

    monkeypatch.setattr(tiny_llm, "chat", looping_chat)
    summary = CascadeSummarizer(tiny_llm).summarize(transcript())
    said = [s.lower() for s in sentences(summary.text)]
    assert said and len(said) == len(set(said)), summary.text
    # Nor does the page: the text, its notes and its key points each quote a sentence once.
    lines = [re.sub(r"^- (\[[\d:]+\] )?(\*\*\w+\*\*: )?", "", line) for line in summary.markdown().splitlines()]
    page = [normalize(s) for line in lines if line and not line.startswith("**") for s in sentences(line)]
    assert len(page) == len(set(page)), summary.markdown()
    assert all(d.no_repeat_ngram_size == 4 for d in asked)  # and generation itself may not loop


def test_a_focus_answer_with_nothing_supported_is_the_notes_item_about_it():
    said = [Segment(0.0, 3.0, "Is the gala date fixed?", "Ana"), Segment(3.0, 5.0, "It's the 9th of May.", "Ben"),
            Segment(5.0, 8.0, "Sorry, it's the 12th of May now, not the 9th.", "Ben"),
            Segment(8.0, 11.0, "The weather was lovely this weekend.", "Ana")]
    transcript = Transcript(said, "en", 1.0, 11.0, "asr")
    summary = grounded_summary("The gala is on June 30.", transcript, "When is the gala?", 2, "student", "v1",
                               Decoding(), time.perf_counter())
    assert summary.dropped == ["The gala is on June 30."]
    assert summary.text == "Is the gala date fixed: Sorry, it's the 12th of May now."
