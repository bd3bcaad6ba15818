"""Each bad recording gets a one-line error, a non-zero exit, and leaves no row and no stored file.

These run the real `speechsum summarize` entry point; validation happens before any model loads.
"""

from __future__ import annotations

import numpy as np
import pytest

from app.cli import EXIT_BAD_INPUT, main
from tests.conftest import stored_files, table_counts, tone, write_mp3, write_wav


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    return exit_info.value.code, capsys.readouterr().err


def assert_rejected(settings, capsys, path, message: str) -> None:
    code, err = run_cli(capsys, "summarize", str(path), "--json")
    assert code == EXIT_BAD_INPUT
    lines = err.strip().splitlines()
    assert lines[-1].startswith("speechsum: error: ")
    assert message in lines[-1], lines[-1]
    assert set(table_counts(settings).values()) == {0}
    assert stored_files(settings) == []


def test_empty_file(settings, capsys, tmp_path):
    path = tmp_path / "empty.wav"
    path.touch()
    assert_rejected(settings, capsys, path, "empty.wav: the file is empty")


def test_random_bytes_named_wav(settings, capsys, tmp_path):
    path = tmp_path / "noise.wav"
    path.write_bytes(np.random.default_rng(0).bytes(50_000))
    assert_rejected(settings, capsys, path, "noise.wav: not a readable audio file")


def test_truncated_mp3(settings, capsys, tmp_path):
    full = write_mp3(tmp_path / "full.mp3", tone(30.0))
    path = tmp_path / "cut.mp3"
    path.write_bytes(full.read_bytes()[: full.stat().st_size // 3])
    assert_rejected(settings, capsys, path, "cut.mp3: the file looks truncated")


def test_truncated_wav_whose_header_declares_more(settings, capsys, tmp_path):
    """FFmpeg takes a WAV's length from the bytes present; the header's data size says 30 s."""
    full = write_wav(tmp_path / "full.wav", tone(30.0))
    path = tmp_path / "cut.wav"
    path.write_bytes(full.read_bytes()[: full.stat().st_size // 8])
    assert_rejected(settings, capsys, path, "cut.wav: the file looks truncated: it declares 30.0 s but only 3.7 s")


def test_silence_only(settings, capsys, tmp_path):
    path = write_wav(tmp_path / "quiet.wav", np.zeros(16_000 * 5, dtype=np.float32))
    assert_rejected(settings, capsys, path, "quiet.wav: the recording is silent")


def test_over_size_limit(settings, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("SPEECHSUM_MAX_UPLOAD_MB", "0.5")
    path = write_wav(tmp_path / "big.wav", tone(20.0))  # 640 kB
    assert_rejected(settings, capsys, path, "big.wav: the file is 0.6 MB; the limit is 0.5 MB")


def test_over_duration_limit(settings, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("SPEECHSUM_MAX_DURATION_MIN", "0.1")
    path = write_wav(tmp_path / "long.wav", tone(10.0))
    assert_rejected(settings, capsys, path, "long.wav: the recording is 0 min 10 s long; the limit is 0 min 06 s")


def test_missing_file(settings, capsys, tmp_path):
    assert_rejected(settings, capsys, tmp_path / "nope.wav", "no such file")


def test_complete_mp3_passes_validation(settings, tmp_path):
    from storage.audio import inspect_audio

    info = inspect_audio(write_mp3(tmp_path / "ok.mp3", tone(12.0)), settings.max_upload_bytes, 60)
    assert info.duration_s == pytest.approx(12.0, abs=0.1)


def test_nan_samples_are_refused_as_broken_not_as_silent(settings, capsys, tmp_path):
    import soundfile as sf

    path = tmp_path / "nan.wav"
    sf.write(path, np.full(32_000, np.nan, np.float32), 16_000, subtype="FLOAT")
    assert_rejected(settings, capsys, path, "not numbers (NaN or infinite)")


@pytest.mark.parametrize("rate", [16_000, 44_100])
def test_a_tone_with_a_few_infinite_samples_is_accepted_and_read_clean(tmp_path, rate):
    """A few Inf samples in a float WAV (resampled or not) are silence, not a "silent" refusal."""
    import soundfile as sf

    from storage.audio import inspect_audio, read_samples

    samples = (0.3 * np.sin(2 * np.pi * 440 * np.arange(3 * rate) / rate)).astype(np.float32)
    samples[[100, 5_000, 9_000]], samples[7_000] = np.inf, -np.inf
    sf.write(tmp_path / "inf.wav", samples, rate, subtype="FLOAT")
    assert inspect_audio(tmp_path / "inf.wav", 10**9, 3600).duration_s == pytest.approx(3.0, abs=0.05)
    cleaned = read_samples(tmp_path / "inf.wav")
    assert np.isfinite(cleaned).all() and 0.25 < np.abs(cleaned).max() < 0.35
