"""An unknown system is refused before the recording is even read, so nothing is stored."""

import pytest

from app.pipeline import UnknownSystemError, compare_file, summarize_file
from tests.conftest import stored_files, table_counts, tone, write_wav


def test_unknown_systems_are_refused_before_any_work(settings, tmp_path):
    wav = write_wav(tmp_path / "a.wav", tone(2.0))
    with pytest.raises(UnknownSystemError, match="unknown system 'oracle': cascade or student"):
        summarize_file(settings, wav, system="oracle")
    with pytest.raises(UnknownSystemError, match="unknown system 'oracle'"):
        compare_file(settings, wav, systems=("student", "oracle"))
    assert set(table_counts(settings).values()) == {0} and stored_files(settings) == []
