"""`make bench-load`: 20 users at once against the real `speechsum serve`, as clients of its API.

Two set-ups: the embedded broker and SQLite with the default number of workers, then 2 workers on
Redis and PostgreSQL. In each, on the same 20 clips (spoken training-side meetings, 20-30 s each):
- serial: the 20 summaries one after another (one user at a time): the makespan to beat;
- at once: 20 users each send their clip and then vote on their summary: completed, lost,
  duplicated, latency (min, median, max) and the makespan against the serial one;
- fairness: one user queues 12 summaries, then another user sends one: that user's wait, in
  seconds and in jobs (the median job's run time).
Targets (issue 23): 0 lost, 0 duplicated, makespan at most 0.6 of the serial one, and the single
job's wait at most two jobs long. Results: bench/results/<date>-load.{json,md}.
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select

from bench.report import RESULTS, dated_report, table
from bench.services import new_database, postgres_server, redis_server, running_app
from models.sources import LIGHT_LLM
from storage import jobs, schema
from storage.db import session_scope
from storage.settings import load_settings


@dataclass
class LoadConfig:
    users: int = 20
    heavy_jobs: int = 12  # the fairness check: one user's queue ahead of another user's single job
    # The light LM keeps the three rounds of 20-odd summaries within minutes on 2 cores; the notes LM
    # (the serving default) takes about 10 s more per clip. Either way the bench measures the queue.
    llm_model: str = LIGHT_LLM
    setups: tuple[str, ...] = ("embedded", "redis-postgres")
    out_dir: Path = RESULTS
    env: dict = field(default_factory=dict)  # more SPEECHSUM_* settings for the server


def make_clips(folder: Path, n: int) -> list[Path]:
    """n different clips: the opening turns of training-side generated meetings, spoken by Piper."""
    from training.data.meetings import make_meeting
    from training.data.tts import synthesize

    clips = []
    for i in range(n):
        meeting = make_meeting(i, seed=4242)
        text = " ".join(line for _, line in meeting.turns[:5])
        clips.append(synthesize(text, folder / f"clip-{i:02d}.wav"))
    return clips


class Users:
    """The API as the simulated users call it: each request is timed; errors are kept, not raised."""

    def __init__(self, url: str):
        from gradio_client import Client

        self.client = lambda: Client(url, verbose=False)

    def summarize(self, clip: Path, user: str, vote: bool = False) -> dict:
        from gradio_client import handle_file

        started = time.monotonic()
        try:
            client = self.client()
            made = client.predict(handle_file(str(clip)), "", user, "cascade", api_name="/summarize")
            if vote:
                client.predict(made["summary_id"], 1, user, api_name="/thumb")
            return {"user": user, "summary_id": made["summary_id"], "start": started, "end": time.monotonic()}
        except Exception as exc:  # noqa: BLE001 - a failed request is a lost job, counted in the report
            return {"user": user, "error": str(exc)[:300], "start": started, "end": time.monotonic()}

    def at_once(self, requests: list[tuple[Path, str]], vote: bool = False, stagger_s: float = 0.0) -> list[dict]:
        done: list[dict] = []
        threads = []
        for clip, user in requests:
            threads.append(threading.Thread(target=lambda c=clip, u=user: done.append(self.summarize(c, u, vote))))
            threads[-1].start()
            time.sleep(stagger_s)
        for thread in threads:
            thread.join()
        return done


def _wait_for_workers(db_url: str, count: int, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with session_scope(db_url) as session:
            if len(jobs.workers_alive(session)) >= count:
                return
        time.sleep(0.5)
    raise RuntimeError(f"fewer than {count} workers came up in {timeout_s:.0f} s")


def _store_counts(db_url: str, prefix: str) -> dict:
    """What the store holds for the API clients whose id starts with `prefix`: summaries, votes, jobs."""
    prefix = f"client:{prefix}"
    with session_scope(db_url) as session:
        per_user = dict(session.execute(
            select(schema.Recording.uploader, func.count(schema.Summary.id))
            .join(schema.Summary, schema.Summary.recording_id == schema.Recording.id)
            .where(schema.Recording.uploader.like(f"{prefix}%")).group_by(schema.Recording.uploader)).all())
        votes = session.scalar(select(func.count(schema.ThumbVote.id)).where(schema.ThumbVote.voter.like(f"{prefix}%")))
        runs = session.scalars(select(schema.Job).where(schema.Job.actor.like(f"{prefix}%"))).all()
        durations = [(j.finished_at - j.started_at).total_seconds() for j in runs if j.finished_at and j.started_at]
        return {"summaries": per_user, "votes": votes, "job_s": durations,
                "waits": {j.actor: (j.started_at - j.created_at).total_seconds() for j in runs if j.started_at}}


def _latencies(done: list[dict]) -> dict:
    ok = [r["end"] - r["start"] for r in done if "summary_id" in r]
    return {"min_s": round(min(ok), 1), "median_s": round(statistics.median(ok), 1),
            "max_s": round(max(ok), 1)} if ok else {}


def run_setup(name: str, env: dict, clips: list[Path], cfg: LoadConfig) -> dict:
    """One set-up: a server, the serial round, the round at once, and the fairness check."""
    settings = load_settings(env)
    with serving(env, clips) as (users, workers):
        started = time.monotonic()
        serial = [users.summarize(clip, f"serial-{i:02d}-user") for i, clip in enumerate(clips)]
        serial_s = time.monotonic() - started
        started = time.monotonic()
        parallel = users.at_once([(clip, f"crowd-{i:02d}-user") for i, clip in enumerate(clips)], vote=True)
        parallel_s = time.monotonic() - started
        heavy = [(clips[i % len(clips)], "heavy-user-00") for i in range(cfg.heavy_jobs)]
        heavy_done: list[dict] = []
        flood = threading.Thread(target=lambda: heavy_done.extend(users.at_once(heavy, stagger_s=0.1)))
        flood.start()
        time.sleep(cfg.heavy_jobs * 0.1 + 2.0)  # the heavy user's jobs are queued first
        single = users.summarize(clips[-1], "light-user-00")
        flood.join()
    crowd = _store_counts(settings.db_url, "crowd-")
    fair = _store_counts(settings.db_url, "light-")
    job_s = statistics.median(crowd["job_s"]) if crowd["job_s"] else float("nan")
    lost = [r for r in parallel if "summary_id" not in r]
    ids = [r["summary_id"] for r in parallel if "summary_id" in r]
    wait = fair["waits"].get("client:light-user-00", float("nan"))
    return {
        "setup": name, "workers": workers, "completed": len(ids), "lost": len(lost),
        "duplicated": len(ids) - len(set(ids)) + sum(max(0, n - 1) for n in crowd["summaries"].values()),
        "votes_stored": crowd["votes"], "latency": _latencies(parallel), "serial_latency": _latencies(serial),
        "makespan_s": round(parallel_s, 1), "serial_makespan_s": round(serial_s, 1),
        "makespan_ratio": round(parallel_s / serial_s, 2), "job_median_s": round(job_s, 1),
        "single_wait_s": round(wait, 1), "single_wait_jobs": round(wait / job_s, 2),
        "single_ok": "summary_id" in single, "heavy_completed": sum("summary_id" in r for r in heavy_done),
        "errors": [r["error"] for r in lost + [single] if "error" in r][:5],
    }


def server_env(folder: Path, llm_model: str) -> dict:
    """A `speechsum serve` of its own in `folder`, with its workers and no refresh schedule."""
    return {"SPEECHSUM_DATA_DIR": str(folder), "SPEECHSUM_LLM_MODEL": llm_model, "SPEECHSUM_WORKER": "1",
            "SPEECHSUM_REFRESH_HOURS": "0", "SPEECHSUM_CONFIG": str(folder / "none.toml")}


def on_redis_postgres(services: ExitStack, env: dict, persistent: bool = False) -> tuple:
    """Moves a server onto a Redis and a PostgreSQL of its own, with 2 workers; returns (env, redis, postgres)."""
    redis = services.enter_context(redis_server(persistent))
    postgres = services.enter_context(postgres_server())
    return (env | {"SPEECHSUM_WORKER_PROCESSES": "2", "SPEECHSUM_BROKER_URL": redis.url,
                   "DATABASE_URL": new_database(postgres)}, redis, postgres)


@contextmanager
def serving(env: dict, clips: list[Path]) -> Iterator[tuple[Users, int]]:
    """The server up, its workers alive and each with its models loaded; yields (users, workers)."""
    settings = load_settings(env)
    with running_app(env, timeout_s=180) as url:
        _wait_for_workers(settings.db_url, settings.worker_count)
        users = Users(url)
        users.at_once([(clips[0], f"warmup-{i:02d}-user") for i in range(settings.worker_count)])
        yield users, settings.worker_count


def run(cfg: LoadConfig = LoadConfig()) -> dict:
    from tqdm import tqdm

    rows = []
    with tempfile.TemporaryDirectory(prefix="speechsum-load-") as tmp:
        root = Path(tmp)
        clips = make_clips(root / "clips", cfg.users)
        for name in tqdm(cfg.setups, desc="bench-load set-ups"):
            env = server_env(root / name, cfg.llm_model) | {"SPEECHSUM_QUEUE_PER_USER": str(cfg.heavy_jobs)} | cfg.env
            with ExitStack() as services:
                if name == "redis-postgres":
                    env, _, _ = on_redis_postgres(services, env)
                rows.append(run_setup(name, env, clips, cfg))
    return dated_report("load", cfg, rows, markdown)


def markdown(report: dict) -> str:
    header = ["set-up", "workers", "completed", "lost", "duplicated", "votes", "latency min / median / max (s)",
              "makespan / serial (s)", "ratio", "1 job behind 12: wait (s, jobs)"]
    rows = [[r["setup"], r["workers"], r["completed"], r["lost"], r["duplicated"], r["votes_stored"],
             " / ".join(str(r["latency"].get(k)) for k in ("min_s", "median_s", "max_s")),
             f"{r['makespan_s']} / {r['serial_makespan_s']}", r["makespan_ratio"],
             f"{r['single_wait_s']}, {r['single_wait_jobs']}"] for r in report["rows"]]
    lines = [f"# Load: {report['config']['users']} users at once ({report['date']})", "", *table(header, rows),
             "", "Targets: 0 lost, 0 duplicated, makespan ratio <= 0.6, the single job's wait <= 2 jobs.",
             f"LM: `{report['config']['llm_model']}`; the median job's run time is the unit of the wait."]
    return "\n".join(lines) + "\n"
