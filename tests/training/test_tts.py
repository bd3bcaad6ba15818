import pytest

from storage.audio import inspect_audio
from training.data.tts import TTSError, synthesize

TEXT = "The quarterly budget review moves to Thursday afternoon."


@pytest.mark.real
@pytest.mark.parametrize("engine", ["piper", "espeak", "flite"])
def test_engines_write_valid_speech_and_speed_shortens_it(tmp_path, engine):
    normal = inspect_audio(synthesize(TEXT, tmp_path / "normal.wav", engine), 10**8, 60)
    fast = inspect_audio(synthesize(TEXT, tmp_path / "fast.wav", engine, speed=1.5), 10**8, 60)
    assert 1.5 < normal.duration_s < 8
    assert fast.duration_s < 0.85 * normal.duration_s


def test_unknown_engine_is_an_error(tmp_path):
    with pytest.raises(TTSError, match="unknown TTS engine 'festival'"):
        synthesize(TEXT, tmp_path / "x.wav", "festival")


@pytest.mark.real
def test_piper_is_reproducible_unless_asked_to_vary(tmp_path):
    same = [synthesize(TEXT, tmp_path / f"same{i}.wav").read_bytes() for i in range(2)]
    varied = [synthesize(TEXT, tmp_path / f"vary{i}.wav", vary=True).read_bytes() for i in range(2)]
    assert same[0] == same[1]
    assert varied[0] != varied[1]
