"""The evaluation data path: items, the fixed split, cached TTS audio, reproducible scores, the report."""

from __future__ import annotations

import dataclasses
import json
import os

import pytest

from bench import qmsum as bench
from bench.asr import asr_word_error_rate, human_speech
from storage.audio import inspect_audio
from storage.settings import load_settings
from training.data.items import EvalItem, load_items, split
from training.data.speech import speak
from training.evaluate import ItemResult, SystemResult, evaluate

MEETING = EvalItem(
    "m1", "Summarize the discussion about the remote control.",
    "Project Manager: We need a remote control that costs under twelve euros.\n"
    "Marketing: Users want it to be easy to find.\n[...]\nProject Manager: Then we go with rubber buttons.",
    "They agreed on a cheap remote with rubber buttons.",
)


def test_turns_skip_gap_markers_and_keep_speakers():
    assert MEETING.turns == [
        ("Project Manager", "We need a remote control that costs under twelve euros."),
        ("Marketing", "Users want it to be easy to find."),
        ("Project Manager", "Then we go with rubber buttons."),
    ]
    assert MEETING.spoken_text.startswith("We need a remote") and "Marketing" not in MEETING.spoken_text
    assert MEETING.is_summarize_query
    assert not dataclasses.replace(MEETING, query="What did Marketing say?").is_summarize_query


def test_load_items_reads_qmsum_jsonl(tmp_path):
    path = tmp_path / "items.jsonl"
    row = {"id": "m1", "query": MEETING.query, "transcript": MEETING.transcript, "summary": MEETING.reference,
           "source": "x", "license": "MIT"}
    path.write_text(json.dumps(row) + "\n\n")
    assert load_items(path) == [MEETING]


def test_split_is_fixed_disjoint_and_its_sides_ignore_the_seed():
    items = [dataclasses.replace(MEETING, id=f"item-{i}") for i in range(200)]
    first, again = split(items, seed=0), split(list(reversed(items)), seed=0)
    assert [i.id for i in first["held_out"]] == [i.id for i in again["held_out"]]
    ids = [i.id for part in first.values() for i in part]
    assert sorted(ids) == sorted(i.id for i in items)
    assert 70 < len(first["held_out"]) < 130
    other = split(items, seed=1)["held_out"]  # a run with --seed 1 trains on the same side, in another order
    assert {i.id for i in other} == {i.id for i in first["held_out"]}
    assert [i.id for i in other] != [i.id for i in first["held_out"]]


@pytest.mark.real
def test_speech_is_made_once_with_a_voice_per_speaker(tmp_path):
    wav = speak(MEETING, tmp_path)
    made = wav.stat().st_mtime_ns
    assert inspect_audio(wav, 10**9, 600).duration_s > 5
    assert speak(MEETING, tmp_path) == wav and wav.stat().st_mtime_ns == made  # cached, not remade
    other = speak(dataclasses.replace(MEETING, transcript="Marketing: Users want it to be easy to find."), tmp_path)
    assert other != wav and sorted(p.name for p in tmp_path.iterdir()) == sorted([wav.name, other.name])


def test_human_speech_from_debian_pocketsphinx_testdata():
    pairs = human_speech()
    assert len(pairs) == 10 and all(wav.exists() for wav, _ in pairs)
    assert pairs[-1][1] == "eight of spades four of clubs seven of hearts"


@pytest.mark.real
def test_asr_word_error_rate_on_real_speech(data_env):
    result = asr_word_error_rate(load_settings(asr_model="tiny.en"), human_speech())
    assert result["clips"] == 10 and result["wer"] < 0.2


@pytest.mark.real
def test_greedy_evaluation_gives_the_same_numbers_twice(data_env, tmp_path):
    settings = load_settings(summary_max_tokens=40)
    items = [MEETING, dataclasses.replace(MEETING, id="m2", query="What did Marketing say about users?")]
    audio = [speak(item, tmp_path) for item in items]
    first, second = (evaluate(settings, "teacher-on-reference", items, audio) for _ in range(2))
    untimed = lambda r: [dataclasses.replace(i, seconds=0.0) for i in r.items]  # noqa: E731
    assert untimed(first) == untimed(second) and first.items[0].summary
    assert first.peak_mb > 100 and first.row()["items"] == 2 and first.row(summarize_only=True)["items"] == 1


def test_unknown_system_is_refused_with_its_name(data_env):
    with pytest.raises(ValueError, match="unknown system 'oracle'"):
        evaluate(load_settings(), "oracle", [MEETING], [])


def test_report_table_and_plot(tmp_path):
    system = {"system": "cascade", "model_version": "v", "items": 2, "rouge1": 0.3, "rouge2": 0.05, "rougeL": 0.2,
              "hallucination": 0.5, "words": 60.0, "compression": 0.3, "s_per_audio_min": 12.0, "rtf": 0.2,
              "peak_mb": 1200.0}
    human = {"system": "human reference", "model_version": "", "items": 2, "hallucination": 0.4, "words": 50.0}
    report = {"date": "2026-11-25", "audio_minutes": 3.0, "rows": {"all": [human, system], "summarize": [human, system]},
              "asr": [{"model_version": "whisper-base", "clips": 10, "wer": 0.066, "rtf": 0.4}], "items": {},
              "config": {"name": "t", "part": "held_out", "data": "/x/qmsum_dev.jsonl", "seed": "0"}}
    table = bench.markdown(report)
    assert "| cascade | 2 | 30.0 | 5.0 | 20.0 | 50.0% | 60 | – | – | – | 12.0 | 1200 |" in table
    assert "| human reference | 2 | – | – | – | 40.0% | 50 | – | – | – | – | – |" in table
    assert "| whisper-base | 10 | 6.6% | 0.40 |" in table
    stem = bench.write(report, dataclasses.replace(bench.BenchConfig(), name="t", out_dir=tmp_path))
    assert stem.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads(stem.with_suffix(".json").read_text()) == report
    assert os.path.getsize(stem.with_suffix(".md")) == len(table.encode())


def test_rows_average_items_and_report_the_judge_only_when_it_scored():
    def item(i, summarize, judge=None):
        return ItemResult(f"i{i}", summarize, "s", 0.1 * i, 0.0, 0.1, 0.5, [], 10, 0.2, 6.0, 60.0, judge)

    result = SystemResult("cascade", [item(1, True, 8.0), item(3, False, None), item(2, False, 6.0)], 900.0, "v")
    row = result.row()
    assert row["items"] == 3 and row["rouge1"] == pytest.approx(0.2) and row["judge"] == pytest.approx(7.0)
    assert row["s_per_audio_min"] == pytest.approx(6.0) and row["rtf"] == pytest.approx(0.1)
    assert result.row(summarize_only=True)["items"] == 1
    assert "judge" not in SystemResult("cascade", [item(1, True)]).row()


def test_split_keeps_every_meeting_on_one_side():
    items = [dataclasses.replace(MEETING, id=f"qmsum-train-M{m:03d}-q{q:02d}") for m in range(60) for q in range(4)]
    parts = split(items, seed=0)
    sides = {side: {i.meeting for i in part} for side, part in parts.items()}
    assert sides["dev"] and sides["held_out"] and not sides["dev"] & sides["held_out"]
    assert items[5].meeting == "M001"


def test_training_items_leave_out_every_held_out_meeting():
    from training.data.items import DEV_FILE, training_items

    shared = load_settings().shared_data
    held_out = {i.meeting for i in split(load_items(shared / DEV_FILE))["held_out"]}
    train = training_items(shared)
    assert len(train) > 300 and not {i.meeting for i in train} & held_out


def test_a_reused_transcript_keeps_its_words_so_speakers_split_as_on_a_fresh_one(tmp_path):
    import numpy as np

    from models.asr import Segment, Transcript, Word
    from training.evaluate import cached_transcript

    class Recognizer:  # counts its calls; the transcript is a fixed one with words
        source = dataclasses.make_dataclass("Source", ["version"])("whisper-test")
        calls = 0

        def transcribe(self, blocks, duration):
            self.calls += 1
            return Transcript([Segment(0.0, 2.0, "Yes. No.")], "en", 1.0, duration, "whisper-test",
                              [[Word(0.0, 1.0, " Yes."), Word(1.0, 2.0, " No.")]])

    recognizer, wav = Recognizer(), tmp_path / "m.wav"
    (tmp_path / "m.whisper-test.json").write_text(json.dumps({  # stored before words were kept
        "segments": [{"start": 0.0, "end": 2.0, "text": "Yes. No."}], "language": "en",
        "language_probability": 1.0, "model_version": "whisper-test"}))
    fresh = cached_transcript(recognizer, np.zeros(16000), 2.0, wav, reuse=True)
    reused = cached_transcript(recognizer, np.zeros(16000), 2.0, wav, reuse=True)
    assert recognizer.calls == 1 and reused == fresh and len(reused.words[0]) == 2
