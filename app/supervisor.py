"""What `speechsum serve` runs beside the web app: its workers, each started again when it dies.

The first worker runs the beat schedule; every worker is a child that gets SIGTERM when `serve`
ends, however it ends.
"""

from __future__ import annotations

import ctypes
import logging
import signal
import subprocess
import sys
import threading
from collections.abc import Callable

from storage.settings import Settings, load_settings

log = logging.getLogger(__name__)


def die_with_parent() -> None:
    """Linux: the worker gets SIGTERM when the web app's process ends, however it ends."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def start_worker(index: int = 0, settings: Settings | None = None) -> subprocess.Popen:
    """Worker `index` of those `serve` starts beside the web app; the first one runs the beat schedule."""
    settings = settings or load_settings()
    argv = [sys.executable, "-m", "app.cli", "worker", "--name", f"speechsum{index}",
            "--threads", str(settings.worker_threads)]
    return subprocess.Popen(argv + ([] if index == 0 else ["--no-beat"]), preexec_fn=die_with_parent)


class Supervisor(threading.Thread):
    """Keeps the `count` workers that `serve` starts alive: one that exits (killed, crashed) is
    started again after `restart_s`, in its own place (so the beat's worker stays the only beat),
    and queued summaries and jobs go on; `stop()` ends them for good."""

    def __init__(self, count: int = 1, start: Callable[[int], subprocess.Popen] = start_worker,
                 restart_s: float = 2.0):
        super().__init__(name="worker-supervisor", daemon=True)
        self.start_worker, self.restart_s, self.restarts = start, restart_s, 0
        self.stopping = threading.Event()
        self.procs = [start(i) for i in range(count)]

    def run(self) -> None:
        while not self.stopping.wait(0.5):
            for i, proc in enumerate(self.procs):
                if proc.poll() is None:
                    continue
                log.warning("worker %d (pid %s) exited with status %s; starting another in %.0f s",
                            i, proc.pid, proc.returncode, self.restart_s)
                if self.stopping.wait(self.restart_s):
                    return
                self.procs[i], self.restarts = self.start_worker(i), self.restarts + 1

    def stop(self, timeout_s: float = 30) -> None:
        self.stopping.set()
        if self.is_alive():
            self.join()
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            proc.wait(timeout_s)


def worker_argv(beat: bool = True, name: str = "speechsum") -> list[str]:
    """The worker's command line: one process (solo pool: a kill takes the job with it), beat inside
    (its schedule file is `beat_schedule_filename`, in the data dir) unless another worker has it."""
    argv = ["worker", "--pool", "solo", "--loglevel", "INFO", "--hostname", f"{name}@%h"]
    return argv + (["--beat"] if beat else [])
