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


@pytest.mark.real
def test_two_processes_speaking_the_same_item_at_once_both_get_its_audio(tmp_path):
    """Each process writes its turns to its own scratch file (a bench and a training job once shared one)."""
    import subprocess
    import sys

    code = ("import sys; from pathlib import Path; from training.data.items import EvalItem; "
            "from training.data.speech import speak; "
            "turns = '\\n'.join(f'Speaker {i % 2 + 1}: Turn {i} of the meeting, about the budget.' for i in range(12)); "
            "print(speak(EvalItem('race', '', turns, ''), Path(sys.argv[1])))")
    runs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True) for _ in range(3)]
    outs = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0, 0], [err[-500:] for _, err in outs]
    assert inspect_audio(outs[0][0].strip(), 10**8, 60).duration_s > 10
