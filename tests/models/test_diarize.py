"""Speakers: turns named in order, words put on the turn they overlap, segments split at a change of
speaker, names applied, and the diarization error rate as defined (collar, one-to-one matching)."""

from __future__ import annotations

import pytest

from models.asr import Segment, Transcript, Word
from models.cascade import chunk_segments
from models.diarize import Turn, diarization_error, label_speakers, label_turns, named, speaker_at
from models.grounding import keep_supported
from models.summarizer import key_points

TURNS = [Turn("Speaker 1", 0.0, 4.0), Turn("Speaker 2", 4.2, 9.0)]


def test_turns_are_named_in_the_order_speakers_first_speak():
    raw = [{"speaker": 7, "start": 3.0, "end": 5.0}, {"speaker": 2, "start": 0.0, "end": 2.9},
           {"speaker": 7, "start": 8.0, "end": 9.0}]
    assert label_turns(raw) == [Turn("Speaker 1", 0.0, 2.9), Turn("Speaker 2", 3.0, 5.0), Turn("Speaker 2", 8.0, 9.0)]


def test_a_word_goes_to_the_turn_it_overlaps_most_else_the_nearest():
    assert speaker_at(3.9, 4.9, TURNS) == "Speaker 2"  # 0.1 s in the first turn, 0.7 s in the second
    assert speaker_at(3.0, 4.1, TURNS) == "Speaker 1"
    assert speaker_at(9.5, 9.8, TURNS) == "Speaker 2" and speaker_at(1.0, 2.0, []) == ""


def test_a_segment_spanning_two_turns_is_split_where_its_words_change_speaker():
    words = [Word(2.5, 3.0, " We"), Word(3.0, 3.6, " agreed."), Word(4.4, 4.8, " You"), Word(4.8, 5.2, " own"),
             Word(5.2, 5.9, " $40"), Word(5.9, 6.0, ",000.")]
    transcript = Transcript([Segment(2.5, 6.0, "We agreed. You own $40,000.")], "en", 1.0, 9.0, "asr", [words])
    labelled = label_speakers(transcript, TURNS)
    assert labelled.segments == [Segment(2.5, 3.6, "We agreed.", "Speaker 1"),
                                 Segment(4.4, 6.0, "You own $40,000.", "Speaker 2")]
    assert labelled.labelled_text() == "Speaker 1: We agreed.\nSpeaker 2: You own $40,000."
    assert named(labelled, {"Speaker 2": "Priya"}).labelled_text() == "Speaker 1: We agreed.\nPriya: You own $40,000."
    assert label_speakers(transcript, []) is transcript


def test_a_sentences_stray_words_at_a_change_of_speaker_stay_with_the_rest_of_it():
    words = [Word(2.0, 2.5, " Right,"), Word(2.5, 3.0, " go"), Word(3.0, 3.5, " on."), Word(3.6, 4.1, " Zoe,"),
             Word(4.3, 4.6, " could"), Word(4.6, 4.8, " you"), Word(4.8, 5.3, " book"), Word(5.3, 5.5, " it?"),
             Word(5.6, 5.9, " Sure.")]  # "Zoe," falls in the first speaker's turn; "Sure." is a sentence
    transcript = Transcript([Segment(2.0, 5.9, "Right, go on. Zoe, could you book it? Sure.")], "en", 1.0, 9.0,
                            "asr", [words])
    turns = [Turn("Speaker 1", 0.0, 4.2), Turn("Speaker 2", 4.2, 5.55), Turn("Speaker 1", 5.55, 9.0)]
    assert label_speakers(transcript, turns).labelled_text() == (
        "Speaker 1: Right, go on.\nSpeaker 2: Zoe, could you book it?\nSpeaker 1: Sure.")


def test_without_words_a_whole_segment_takes_the_speaker_it_overlaps_most():
    transcript = Transcript([Segment(0.5, 3.0, "Hello."), Segment(5.0, 8.0, "Hi.")], "en", 1.0, 9.0, "asr")
    assert [s.speaker for s in label_speakers(transcript, TURNS).segments] == ["Speaker 1", "Speaker 2"]


def test_summarizers_read_one_turn_per_line_and_key_points_say_who():
    transcript = Transcript([Segment(0.0, 2.0, "We approved the budget of forty thousand dollars.", "Ana"),
                             Segment(2.0, 4.0, "Good.", "Ana"),
                             Segment(4.0, 9.0, "I will send the signed contract to legal by Friday.", "Ben")],
                            "en", 1.0, 9.0, "asr")
    turns = transcript.turns()
    assert [t.text for t in turns] == ["Ana: We approved the budget of forty thousand dollars. Good.",
                                       "Ben: I will send the signed contract to legal by Friday."]
    assert chunk_segments(turns, 1000, lambda t: len(t.split())) == [
        "Ana: We approved the budget of forty thousand dollars. Good.\n"
        "Ben: I will send the signed contract to legal by Friday."]
    points = key_points(transcript.segments, 2)
    assert [p.get("speaker") for p in points] == ["Ana", "Ben"]


def test_a_summary_may_name_the_speakers_the_transcript_labels():
    transcript = Transcript([Segment(0.0, 2.0, "I will send the report.", "Priya")], "en", 1.0, 2.0, "asr")
    kept, dropped = keep_supported("Priya will send the report.", transcript.labelled_text())
    assert kept == "Priya will send the report." and dropped == []


@pytest.mark.parametrize(("hypothesis", "expected"), [
    ([Turn("A", 0.0, 4.0), Turn("B", 4.2, 9.0)], 0.0),  # other names, same turns: no error
    ([Turn("A", 0.0, 9.0)], pytest.approx(0.4, abs=0.06)),  # the second speaker missed as a speaker: confusion
    ([], 1.0),  # nothing found: all speech missed
])
def test_diarization_error_rate(hypothesis, expected):
    assert diarization_error(TURNS, hypothesis) == expected
