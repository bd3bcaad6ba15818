"""Downloads, and the page's summary text, render a hand-made result exactly; SRT is checked cue by cue."""

import json

import pytest

from app import exports
from app.pipeline import Result
from models.asr import Segment, Transcript
from models.summarizer import Summary


@pytest.fixture
def result() -> Result:
    segments = [Segment(0.0, 2.5, " Good morning."), Segment(3725.5, 3728.25, " The budget is approved.")]
    summary = Summary("The budget was approved.", key_points=[{"text": "The budget is approved.", "start": 3725.5,
                                                               "end": 3728.25}],
                      query="What about the budget?", system="cascade", model_version="llm-1")
    return Result(7, 3, Transcript(segments, "en", 0.99, 3730.0, "whisper-base"), 12, summary)


def test_srt_numbers_cues_and_formats_hours_and_milliseconds(result):
    assert exports.to_srt(result) == (
        "1\n00:00:00,000 --> 00:00:02,500\nGood morning.\n\n"
        "2\n01:02:05,500 --> 01:02:08,250\nThe budget is approved.\n"
    )


def test_txt_and_markdown_hold_summary_key_points_transcript_and_provenance(result):
    txt = exports.to_txt(result)
    assert txt.startswith("SUMMARY\nThe budget was approved.\n")
    assert "(cascade · llm-1 · question: What about the budget?)" in txt
    assert "KEY POINTS\n[1:02:05] The budget is approved.\n" in txt
    assert txt.endswith("TRANSCRIPT\n[00:00] Good morning.\n[1:02:05] The budget is approved.\n")
    md = exports.to_markdown(result)
    assert md.startswith("# Summary\n\nThe budget was approved.\n")
    assert "- **1:02:05** The budget is approved." in md and "## Transcript" in md


def test_json_is_the_cli_shape(result):
    assert json.loads(exports.to_json(result)) == json.loads(json.dumps(result.as_dict()))


def test_write_names_files_by_summary_and_rejects_unknown_formats(result, tmp_path):
    paths = [exports.write(result, fmt, tmp_path) for fmt in exports.FORMATS]
    assert [p.name for p in paths] == ["speechsum-12.txt", "speechsum-12.md", "speechsum-12.srt", "speechsum-12.json"]
    assert paths[2].read_text() == exports.to_srt(result)
    with pytest.raises(ValueError, match="unknown format 'docx'"):
        exports.write(result, "docx", tmp_path)


def test_the_notes_reach_txt_markdown_and_json_with_times_owners_and_the_names_users_gave(result):
    from models.notes import NoteItem, Notes

    decision = NoteItem("We decided to approve the budget.", 3725.5, 3728.25, "Speaker 1")
    action = NoteItem("I'll send the invoice by Friday.", 3728.25, 3730.0, "Speaker 2", "Speaker 2", "Friday")
    result.summary.notes = Notes("The budget was approved.", [decision], [action]).as_dict()
    result.speakers = {"Speaker 2": "Priya"}
    txt = exports.to_txt(result)
    assert "DECISIONS\n[1:02:05] We decided to approve the budget.\n" in txt
    assert "ACTION ITEMS\n[1:02:08] Priya: I'll send the invoice by Friday. (due Friday)\n" in txt
    md = exports.to_markdown(result)
    assert "## Action items\n\n- [1:02:08] Priya: I'll send the invoice by Friday. (due Friday)\n" in md
    notes = json.loads(exports.to_json(result))["notes"]
    assert notes["action_items"][0]["owner"] == "Priya" and notes["decisions"][0]["start"] == 3725.5


def test_an_overview_that_only_repeats_the_notes_is_not_written_twice(result):
    from models.notes import NoteItem, Notes

    decision = NoteItem("The budget was approved.", 3725.5, 3728.25, "Speaker 1")
    result.summary.notes = Notes("The budget was approved.", [decision]).as_dict()  # no overview of its own
    for text in (exports.to_txt(result), exports.to_markdown(result), result.summary.markdown()):
        assert text.count("The budget was approved.") == 1, text


def test_the_ab_panels_show_the_notes_without_key_points(result):
    from app.ui import summary_markdown
    from models.notes import NoteItem, Notes

    decision = NoteItem("We decided to approve the budget.", 3725.5, 3728.25, "Speaker 1")
    result.summary.notes = Notes("The budget was approved.", [decision]).as_dict()
    panel = summary_markdown(result, key_points=False)
    assert "[1:02:05] We decided to approve the budget." in panel  # a plain time: the A/B tab has no player
    assert "Key points" not in panel and "#t=" not in panel
    assert "Key points" in summary_markdown(result)
