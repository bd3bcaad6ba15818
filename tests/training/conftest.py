"""The training tests' settings: tiny base models saved to disk, a shared-data dir with a few held-out items."""

from __future__ import annotations

import pytest

from storage.db import upgrade
from storage.settings import load_settings
from tests.helpers.tiny import tiny_bases, write_gate_data


@pytest.fixture
def loop_settings(data_env, tmp_path, monkeypatch):
    """Settings whose LM is a tiny one on disk, so a stage loaded from settings (in a worker, a
    subprocess) builds on it, and whose QMSum data has three held-out items for the gate."""
    _, lm = tiny_bases(tmp_path / "bases")
    monkeypatch.setenv("SPEECHSUM_LLM_MODEL", lm)
    monkeypatch.setenv("SPEECHSUM_ASR_MODEL", "tiny.en")
    monkeypatch.setenv("SPEECHSUM_SHARED_DATA", str(write_gate_data(tmp_path / "shared")))
    settings = load_settings()
    upgrade(settings.db_url)
    return settings
