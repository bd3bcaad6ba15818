"""Background jobs in SQL: queue, claim, report progress, cancel, finish.

A job row is created when work is asked for (by the admin tab, the CLI or the beat schedule) and
then handed to a worker by id. `run` wraps the work: it claims the job (taking the job's lock if
its kind has one), passes a progress callback that also checks for a cancel between steps, and
records the outcome. Training kinds share one lock, so only one of them runs at a time, across
processes.

The rule for a dead worker: while a job runs, a thread of its worker writes a heartbeat every
`HEARTBEAT_S` (5 s), whatever the work is doing. A running job whose worker process is gone (same
host; a zombie counts as gone) or whose heartbeat is older than `STALE_S` (45 s) is ended "failed"
and its lock freed, by the next worker start, job claim, lock check or job listing: so within a
minute of the kill for anyone who looks. A cancel reaches the work at its next progress report
(each training step, each summary chunk); a cancel of a job whose worker is dead ends it at once.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from storage.db import session_scope
from storage.schema import Job, Worker, aware, utcnow

JOB_KINDS = ("summarize", "build_data", "train", "train_all", "evaluate", "refresh")
LOCKS = {"train": "training", "train_all": "training", "refresh": "training", "build_data": "training"}
HEARTBEAT_S = 5.0
STALE_S = 45.0
LOG_CHARS = 6000
log = logging.getLogger("speechsum.jobs")


class JobError(ValueError):
    """A job request that cannot be met; the message is meant for the user."""


class JobBusy(JobError):
    """Another job holds the lock this one needs."""


class JobCancelled(Exception):
    """Raised inside the work when an admin cancelled the job; the loop stops between steps."""


def this_worker() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _alive(worker: str) -> bool:
    """Whether the process `host:pid` is running; a process on another host is assumed alive."""
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed child its parent has not reaped yet is a zombie: it answers signals but runs nothing
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _dead(job: Job) -> bool:
    """Whether the running job's worker is gone: no such process, or no heartbeat for `STALE_S`."""
    beat = aware(job.heartbeat_at) if job.heartbeat_at else None
    return not _alive(job.worker) or (beat is not None and beat < utcnow() - timedelta(seconds=STALE_S))


def worker_beat(session: Session, name: str | None = None, stopping: bool = False) -> None:
    """Records that the worker `name` (this process) is alive, or, when stopping, that it is gone."""
    name = name or this_worker()
    worker = session.get(Worker, name)
    if stopping:
        if worker is not None:
            session.delete(worker)
    elif worker is None:
        session.add(Worker(name=name))
    else:
        worker.heartbeat_at = utcnow()
    session.flush()


def workers_alive(session: Session) -> list[str]:
    """The workers that beat within `STALE_S` (and whose process, on this host, still runs)."""
    since = utcnow() - timedelta(seconds=STALE_S)
    return [w.name for w in session.scalars(select(Worker).order_by(Worker.name))
            if aware(w.heartbeat_at) >= since and _alive(w.name)]


def _append(log: str, line: str) -> str:
    return (log + line.rstrip() + "\n")[-LOG_CHARS:]


def create(session: Session, kind: str, params: dict | None = None, actor: str = "") -> Job:
    if kind not in JOB_KINDS:
        raise JobError(f"unknown job kind {kind!r}; choose one of {', '.join(JOB_KINDS)}")
    job = Job(kind=kind, params=params or {}, actor=actor, status="queued", progress=0.0, message="queued",
              log="", result={}, cancel_requested=False, worker="", attempts=0)
    session.add(job)
    session.flush()
    return job


def get(session: Session, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise JobError(f"there is no job {job_id}")
    return job


def listing(session: Session, limit: int = 50) -> list[Job]:
    free_dead_locks(session)
    return list(session.scalars(select(Job).order_by(Job.id.desc()).limit(limit)))


def fair_queue(session: Session, kind: str = "summarize") -> list[Job]:
    """The queued jobs of `kind` in the order they run, in rounds: every user's oldest waiting job,
    then every user's second, and so on; within a round the user served longest ago goes first. So
    nobody waits behind more than one job of each other user, however many one user queues."""
    served = dict(session.execute(select(Job.actor, func.max(Job.started_at))
                                  .where(Job.kind == kind, Job.started_at.is_not(None)).group_by(Job.actor)).all())
    never = datetime.min.replace(tzinfo=timezone.utc)
    turn: Counter[str] = Counter()
    ranked = []
    for job in session.scalars(select(Job).where(Job.kind == kind, Job.status == "queued").order_by(Job.id)):
        last = served.get(job.actor)
        ranked.append(((turn[job.actor], aware(last) if last else never, job.id), job))
        turn[job.actor] += 1
    return [job for _, job in sorted(ranked, key=lambda r: r[0])]


def position(session: Session, job_id: int) -> int | None:
    """Where a queued job stands in its kind's fair queue (1: next), or None when it is not queued."""
    job = get(session, job_id)
    order = [j.id for j in fair_queue(session, job.kind)]
    return order.index(job_id) + 1 if job_id in order else None


def waiting(session: Session, kind: str = "summarize") -> Counter[str]:
    """How many jobs of `kind` each user has queued."""
    return Counter(dict(session.execute(select(Job.actor, func.count()).where(Job.kind == kind, Job.status == "queued")
                                        .group_by(Job.actor)).all()))


def running(session: Session, kind: str) -> int:
    """How many jobs of `kind` run now."""
    return session.scalar(select(func.count(Job.id)).where(Job.kind == kind, Job.status == "running")) or 0


def cancel_mine(session: Session, actor: str, kind: str = "summarize") -> list[int]:
    """Cancels `actor`'s unfinished jobs of `kind` (a user stopping their own summaries); their ids."""
    mine = session.scalars(select(Job.id).where(Job.kind == kind, Job.actor == actor,
                                                Job.status.in_(("queued", "running")))).all()
    for job_id in mine:
        cancel(session, job_id)
    return list(mine)


def take_next(url: str, kind: str = "summarize", worker: str | None = None) -> int | None:
    """Takes the fair queue's first job for this worker (an atomic queued -> running, so two workers
    never take the same one); None when nothing is queued."""
    with session_scope(url) as session:
        for job in fair_queue(session, kind):
            taken = session.execute(update(Job).where(Job.id == job.id, Job.status == "queued")
                                    .values(status="running", worker=worker or this_worker(),
                                            started_at=utcnow(), heartbeat_at=utcnow()))
            if taken.rowcount == 1:
                return job.id
    return None


def busy(session: Session, kind: str) -> str | None:
    """Why a job of `kind` cannot run now (another job holds its lock), or None."""
    if kind not in LOCKS:
        return None
    free_dead_locks(session)
    holder = session.scalar(select(Job).where(Job.lock == LOCKS[kind]))
    return f"another training job is running (job {holder.id}, {holder.kind})" if holder else None


def _end(job: Job, status: str, message: str) -> None:
    job.status, job.message, job.lock, job.finished_at = status, message, None, utcnow()
    job.log = _append(job.log, message)


def free_dead_locks(session: Session) -> list[int]:
    """Fails the running jobs whose worker is gone (killed, crashed, host lost): frees their locks."""
    freed = []
    for job in session.scalars(select(Job).where(Job.status == "running")):
        if _dead(job):
            _end(job, "failed", f"the worker {job.worker} stopped while running this job (killed or crashed)")
            freed.append(job.id)
    session.flush()
    return freed


def claim(url: str, job_id: int, worker: str | None = None) -> Job:
    """Marks the job running in this worker, taking its kind's lock; refuses if the lock is held."""
    worker = worker or this_worker()
    try:
        with session_scope(url) as session:
            free_dead_locks(session)
            job = get(session, job_id)
            if job.status == "cancelled" or job.cancel_requested:
                raise JobCancelled(f"job {job_id} was cancelled before it started")
            if job.status in ("succeeded", "failed"):
                raise JobError(f"job {job_id} already ended ({job.status})")
            job.status, job.worker, job.attempts = "running", worker, job.attempts + 1
            job.started_at = job.heartbeat_at = utcnow()
            job.lock = LOCKS.get(job.kind)
            job.log = _append(job.log, f"started on {worker} (attempt {job.attempts})")
            session.flush()
    except IntegrityError:
        with session_scope(url) as session:
            job = get(session, job_id)
            message = busy(session, job.kind) or "another training job is running"
            _end(job, "failed", f"refused: {message}")
        raise JobBusy(message) from None
    return job


def report(url: str, job_id: int, fraction: float, message: str) -> None:
    """Records progress (and a heartbeat); raises JobCancelled when an admin asked to cancel."""
    with session_scope(url) as session:
        job = get(session, job_id)
        job.progress, job.message, job.heartbeat_at = max(0.0, min(1.0, fraction)), message, utcnow()
        cancelled = job.cancel_requested
    if cancelled:
        raise JobCancelled(f"job {job_id} was cancelled")


def finish(url: str, job_id: int, status: str, message: str, result: dict | None = None,
           version_id: int | None = None) -> None:
    with session_scope(url) as session:
        job = get(session, job_id)
        _end(job, status, message)
        job.result, job.version_id = result or {}, version_id
        if status == "succeeded":
            job.progress = 1.0


def cancel(session: Session, job_id: int) -> Job:
    """A queued job is cancelled at once, and a running one whose worker is dead; a running one stops
    at its next step."""
    job = get(session, job_id)
    if job.status == "queued":
        _end(job, "cancelled", "cancelled before it started")
    elif job.status == "running" and _dead(job):
        _end(job, "cancelled", f"cancelled; its worker {job.worker} had stopped")
    elif job.status == "running":
        job.cancel_requested = True
        job.log = _append(job.log, "cancel requested")
    else:
        raise JobError(f"job {job_id} has already ended ({job.status})")
    session.flush()
    return job


Work = Callable[[Callable[[float, str], None]], dict]


class Beat(threading.Thread):
    """Calls `write(session)` now and every `HEARTBEAT_S`, in a thread of its own so that a long step
    does not silence it: a worker's beat (`worker_beat`) and a running job's (`_job_beat`). A failed
    write (a database hiccup) is logged and tried again at the next beat. `with Beat(...)` beats while
    the block runs; a started Beat outside a `with` beats until the process ends."""

    def __init__(self, url: str, write: Callable[[Session], None], name: str):
        super().__init__(name=name, daemon=True)
        self.url, self.write = url, write
        self.stopped = threading.Event()

    def run(self) -> None:
        while True:
            try:
                with session_scope(self.url) as session:
                    self.write(session)
            except Exception:  # noqa: BLE001 - a database hiccup: the next beat tries again
                log.warning("%s not written", self.name, exc_info=True)
            if self.stopped.wait(HEARTBEAT_S):
                return

    def __enter__(self) -> Beat:
        self.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.stopped.set()
        self.join()


def _job_beat(job_id: int, cancelled: threading.Event) -> Callable[[Session], None]:
    """A running job's heartbeat, which also notices a cancel."""
    def write(session: Session) -> None:
        job = get(session, job_id)
        job.heartbeat_at = utcnow()
        if job.cancel_requested:
            cancelled.set()

    return write


def run(url: str, job_id: int, work: Work, worker: str | None = None) -> dict:
    """Claims the job, runs `work(progress)` and records how it ended; returns the job's result.

    `work` returns a dict (its `version_id`, when it made a version, is kept on the job). A cancel
    ends the job "cancelled"; a JobError ends it "failed" with its message marked `shown` (fit for the
    user who asked); any other error ends it "failed" with the error and traceback for the admin. Nothing
    is raised to the caller except JobBusy (the lock is held) and a cancel before the start."""
    claim(url, job_id, worker)
    state = {"last": 0.0, "fraction": 0.0}
    cancelled = threading.Event()

    def progress(fraction: float, message: str) -> None:
        if cancelled.is_set():
            raise JobCancelled(f"job {job_id} was cancelled")
        now = time.monotonic()
        # At most two writes a second, except a jump of 5% or more (a stage starting), which is never lost.
        if now - state["last"] >= 0.5 or fraction >= 1.0 or abs(fraction - state["fraction"]) >= 0.05:
            state["last"], state["fraction"] = now, fraction
            try:
                report(url, job_id, fraction, message)
            except OperationalError as exc:  # the database restarting: progress is not worth the job
                log.warning("job %s: progress not recorded (%s)", job_id, type(exc).__name__)

    try:
        with Beat(url, _job_beat(job_id, cancelled), f"heartbeat of job {job_id}"):
            result = work(progress) or {}
    except JobCancelled as exc:
        finish(url, job_id, "cancelled", str(exc))
        return {"status": "cancelled"}
    except JobError as exc:  # says what to do: the user who asked may read it as it is
        finish(url, job_id, "failed", str(exc), {"shown": True})
        return {"status": "failed", "error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - recorded on the job, which is what the admin reads
        finish(url, job_id, "failed", f"{type(exc).__name__}: {exc}",
               {"traceback": traceback.format_exc()[-LOG_CHARS:]})
        return {"status": "failed", "error": str(exc)}
    finish(url, job_id, "succeeded", result.get("message", "done"), result, result.get("version_id"))
    return result | {"status": "succeeded"}
