"""Training runs as separate processes, for the kill -9 and resume tests."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = str(Path(__file__).resolve().parents[2])


def start(script: str, **values: object) -> subprocess.Popen:
    """A Python process running `script` formatted with `root` (the checkout) and `values`."""
    code = script.format(root=ROOT, **values)
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def kill_once_saved(process: subprocess.Popen, runs: Path, ready: Callable[[dict], bool], timeout_s: float = 180) -> None:
    """SIGKILL `process` as soon as a resumable save under `runs` passes `ready` (or at the timeout)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and process.poll() is None:
        if any(ready(torch.load(p, weights_only=False)) for p in runs.glob("*/state.pt")):
            break
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()


def finished(process: subprocess.Popen, out: Path, timeout_s: float = 300) -> dict:
    """What the process saved to `out`, once it ended well."""
    assert process.wait(timeout=timeout_s) == 0, process.stderr.read().decode()[-2000:]
    return torch.load(out, weights_only=False)
