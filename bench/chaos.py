"""`make bench-chaos`: faults while users are being served, against the real `speechsum serve`.

Four faults, each on a fresh server with summaries in flight (clips as in bench/load.py):
- a summary worker killed (`kill -9`) mid-summary (embedded broker, SQLite);
- a worker killed mid-stage while it holds the training lock (the teacher stage; embedded, SQLite);
- Redis restarted (with its append-only file, as compose runs it; 2 workers, PostgreSQL);
- PostgreSQL restarted under load (Redis, 2 workers).
For each: the seconds from the fault until a summary asked for after it is done ("flowing again";
target under 60 s), the requests lost (target 0) and whether every job ended (succeeded, failed or
retried: none left queued or running), how long the training lock stayed held (target under 60 s)
and whether the served version is unchanged. Results: bench/results/<date>-chaos.{json,md}.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from bench.load import make_clips, on_redis_postgres, server_env, serving
from bench.report import RESULTS, dated_report, table
from bench.services import SPEECHSUM, restart_postgres
from models.sources import LIGHT_LLM
from storage import jobs, registry, schema
from storage.db import session_scope
from storage.settings import load_settings

FAULTS = ("summary-worker-killed", "training-worker-killed", "redis-restarted", "postgres-restarted")


@dataclass
class ChaosConfig:
    in_flight: int = 4  # summaries being served when the fault comes
    llm_model: str = LIGHT_LLM
    faults: tuple[str, ...] = FAULTS
    out_dir: Path = RESULTS
    timeout_s: float = 300.0  # the longest a probe summary is waited for after a fault


def _until(check: Callable[[], object], timeout_s: float, step_s: float = 0.2):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(step_s)
    return None


def _jobs(db_url: str) -> list[schema.Job]:
    from sqlalchemy import select

    with session_scope(db_url) as session:
        return list(session.scalars(select(schema.Job)))


def _served(db_url: str) -> dict:
    with session_scope(db_url) as session:
        return {kind: (v.name if (v := registry.served(session, kind)) else None) for kind in ("teacher", "student")}


def _pid_of(job: schema.Job) -> int:
    return int(job.worker.rsplit(":", 1)[1])


class Fault:
    """What each fault does, given the server's settings and its services."""

    def __init__(self, settings, env: dict, redis=None, postgres=None):
        self.settings, self.env, self.redis, self.postgres = settings, env, redis, postgres
        self.lock_held_s: float | None = None

    def _running(self, kind: str) -> schema.Job | None:
        return next((j for j in _jobs(self.settings.db_url) if j.kind == kind and j.status == "running"), None)

    def summary_worker_killed(self) -> None:
        job = _until(lambda: self._running("summarize"), 120)
        os.kill(_pid_of(job), signal.SIGKILL)

    def training_worker_killed(self) -> None:
        subprocess.run([SPEECHSUM, "jobs", "run", "train", "stage=teacher", "minutes=10"], env=os.environ | self.env,
                       check=True, capture_output=True)  # as an admin queues it
        job = _until(lambda: self._running("train"), 180)
        _until(lambda: self._running("train").progress > 0, 300)  # within the stage, past its set-up
        os.kill(_pid_of(job), signal.SIGKILL)
        killed = time.monotonic()

        def freed() -> bool:
            with session_scope(self.settings.db_url) as session:
                jobs.free_dead_locks(session)
                return jobs.busy(session, "train") is None
        self.lock_held_s = round(time.monotonic() - killed, 1) if _until(freed, 120, 1.0) else None

    def redis_restarted(self) -> None:
        _until(lambda: self._running("summarize"), 120)
        self.redis.restart()

    def postgres_restarted(self) -> None:
        _until(lambda: self._running("summarize"), 120)
        restart_postgres(self.postgres)


def run_fault(name: str, root: Path, clips: list[Path], cfg: ChaosConfig) -> dict:
    env = server_env(root / name, cfg.llm_model)
    with ExitStack() as services:
        redis = postgres = None
        if name in ("redis-restarted", "postgres-restarted"):
            env, redis, postgres = on_redis_postgres(services, env, persistent=True)  # as compose runs Redis
        settings = load_settings(env)
        with serving(env, clips) as (users, workers):
            served_before = _served(settings.db_url)
            done: list[dict] = []
            crowd = threading.Thread(target=lambda: done.extend(users.at_once(
                [(clips[1 + i], f"chaos-{i:02d}-user") for i in range(cfg.in_flight)], stagger_s=0.2)))
            crowd.start()
            fault = Fault(settings, env, redis, postgres)
            getattr(fault, name.replace("-", "_"))()
            struck = time.monotonic()
            probe = _until(lambda: (r := users.summarize(clips[-1], "probe-00-user")) and "summary_id" in r and r,
                           cfg.timeout_s, 1.0)
            flowing_s = round(probe["end"] - struck, 1) if probe else None
            crowd.join(cfg.timeout_s)
        ended = Counter(j.status for j in _jobs(settings.db_url))
        return {
            "fault": name, "workers": workers, "flowing_again_s": flowing_s,
            "requests": len(done), "lost": sum("summary_id" not in r for r in done) + (crowd.is_alive()),
            "jobs": dict(ended), "jobs_unended": ended["queued"] + ended["running"],
            "retried": sum(1 for j in _jobs(settings.db_url) if j.kind == "summarize" and "stopped while running"
                           in j.message),
            "lock_held_s": fault.lock_held_s, "served_unchanged": _served(settings.db_url) == served_before,
            "errors": [r["error"] for r in done if "error" in r][:3],
        }


def run(cfg: ChaosConfig = ChaosConfig()) -> dict:
    from tqdm import tqdm

    rows = []
    with tempfile.TemporaryDirectory(prefix="speechsum-chaos-") as tmp:
        root = Path(tmp)
        clips = make_clips(root / "clips", cfg.in_flight + 2)
        for name in tqdm(cfg.faults, desc="bench-chaos faults"):
            rows.append(run_fault(name, root, clips, cfg))
    return dated_report("chaos", cfg, rows, markdown)


def markdown(report: dict) -> str:
    header = ["fault", "workers", "flowing again (s)", "lost", "jobs not ended", "jobs by status", "lock held (s)",
              "served unchanged"]
    rows = [[r["fault"], r["workers"], r["flowing_again_s"], r["lost"], r["jobs_unended"],
             ", ".join(f"{k} {v}" for k, v in sorted(r["jobs"].items())),
             "-" if r["lock_held_s"] is None else r["lock_held_s"], r["served_unchanged"]] for r in report["rows"]]
    lines = [f"# Chaos ({report['date']}): faults with {report['config']['in_flight']} summaries in flight", "",
             *table(header, rows), "", "Targets: flowing again under 60 s, 0 lost, every job ended (failed or "
             "retried), the lock freed under 60 s, the served version unchanged."]
    return "\n".join(lines) + "\n"
