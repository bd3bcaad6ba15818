"""For the real-model tests: a spoken meeting's turns, and the real `speechsum` command."""

from __future__ import annotations

import subprocess

from tests.conftest import SPEECHSUM

TURNS = [("Ana", "Good morning everyone. We need to settle the launch date today."),
         ("Ben", "Marketing asked for the fifteenth of May, after the trade show."),
         ("Ana", "Then the fifteenth it is. Ben, you own the press release."),
         ("Ben", "Fine. I will send a draft to legal by Friday.")]


def speechsum(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([SPEECHSUM, *args], capture_output=True, text=True, timeout=600)


