"""The Celery app: background jobs (every summary when there are workers, training data, training stages,
evaluation, the learning loop's refresh) and the beat schedule that starts a refresh.

Every task is a thin call: the job row (storage/jobs.py) says what to do, a library function does
it, `jobs.run` records progress and the outcome. The broker is Redis in deployments
(`SPEECHSUM_BROKER_URL=redis://...`) and, by default, kombu's filesystem transport in the data dir,
which needs no server. Long tasks are acknowledged late with a prefetch of 1; on Redis a message
stays invisible for longer than the longest stage, so a stage is not handed out twice.
"""

from __future__ import annotations

import logging
import os
import time
from datetime import timedelta
from functools import cache

from celery import Celery
from celery.signals import beat_embedded_init, worker_ready, worker_shutdown
from sqlalchemy.exc import OperationalError

from storage import jobs, registry
from storage.db import ensure_schema, session_scope
from storage.settings import Settings, load_settings

log = logging.getLogger(__name__)
VISIBILITY_S = 8 * 3600  # longer than the longest stage (alignment: under an hour on a CPU)


def broker_options(settings: Settings) -> dict:
    if settings.broker_url:
        return {"broker_url": settings.broker_url, "result_backend": settings.broker_url,
                "broker_transport_options": {"visibility_timeout": VISIBILITY_S},
                "result_backend_transport_options": {"visibility_timeout": VISIBILITY_S}}
    root = settings.data_dir / "broker"
    for folder in ("queue", "processed", "results", "control"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    queue = str(root / "queue")
    return {"broker_url": "filesystem://", "result_backend": f"file://{root / 'results'}",
            "broker_transport_options": {"data_folder_in": queue, "data_folder_out": queue,
                                         "processed_folder": str(root / "processed"),
                                         "control_folder": str(root / "control")}}


def make_app(settings: Settings) -> Celery:
    app = Celery("speechsum", set_as_current=False)
    app.conf.update(
        broker_options(settings),
        task_acks_late=True,
        task_reject_on_worker_lost=False,  # a job that killed its worker ends failed, not in a crash loop
        worker_prefetch_multiplier=1,
        worker_concurrency=1,  # one model at a time on a small machine; add workers to scale
        task_track_started=True,
        broker_connection_retry_on_startup=True,
        beat_schedule_filename=str(settings.data_dir / "beat-schedule"),
        beat_schedule=({"refresh": {"task": "speechsum.scheduled_refresh",
                                    "schedule": timedelta(hours=settings.refresh_hours)}}
                       if settings.refresh_hours > 0 else {}),
    )
    return app


@cache
def app_for(settings: Settings) -> Celery:
    return make_app(settings)


celery_app = app_for(load_settings())  # what `celery -A app.worker` runs


def work_for(settings: Settings, kind: str, params: dict):
    """The library call that does a job of `kind`, as a function of a progress callback."""
    if kind == "summarize":
        return lambda progress: summary_work(settings, params, progress)
    if kind == "refresh":
        from training.refresh import RefreshConfig, refresh

        return lambda progress: refresh(settings, RefreshConfig.from_settings(settings, **params), progress)
    if kind == "train":
        from training.stages.chain import stage_config

        def train(progress):
            from training.stages.chain import run_stage

            changes = {k: v for k, v in params.items() if k != "stage"}
            name = run_stage(settings, params["stage"], stage_config(params["stage"], changes), progress)
            return {"version": name, "version_id": _version_id(settings, name), "message": f"trained {name}"}
        return train
    if kind == "train_all":
        return lambda progress: train_chain(settings, params, progress)
    if kind == "evaluate":
        from training.refresh import RefreshConfig, gate_items, held_out_scores

        def evaluate(progress):
            gate = {k: v for k, v in params.items() if k != "version"}
            items, audio = gate_items(settings, RefreshConfig.from_settings(settings, **gate))
            scores = held_out_scores(settings, params["version"], items, audio, progress)
            return {"scores": scores, "message": f"{params['version']}: ROUGE-L {100 * scores['rougeL']:.1f}, "
                                                 f"hallucination {100 * scores['hallucination']:.1f}%"}
        return evaluate
    if kind == "build_data":
        from training.stages.chain import build_data

        return lambda progress: build_data(settings, progress)
    raise jobs.JobError(f"unknown job kind {kind!r}")


def train_chain(settings: Settings, params: dict, progress) -> dict:
    """Every stage as one job, then the gate (which serves the last version if it passes): how a fresh
    install trains itself. Params: {stage: {field: value}} changes and "align_items". Started again
    with the same params, it goes on where it stopped."""
    from training.refresh import RefreshConfig
    from training.stages.chain import STAGES, stage_config, train_all

    unknown = set(params) - {*STAGES, "align_items", "gate"}
    if unknown:
        raise jobs.JobError(f"unknown train_all parameter(s): {', '.join(sorted(unknown))}")
    configs = {stage: stage_config(stage, params.get(stage, {})) for stage in STAGES}
    gate = RefreshConfig.from_settings(settings, **params.get("gate", {}))
    done = train_all(settings, configs, int(params.get("align_items", 2000)), progress, gate)
    message = f"trained {done['candidate']}: {done['message']}"
    return done | {"version_id": _version_id(settings, done["candidate"]), "message": message}


def _version_id(settings: Settings, name: str) -> int:
    with session_scope(settings.db_url) as session:
        return registry.get(session, name).id


def execute(job_id: int) -> dict:
    """Runs job `job_id` here and now (what every task does; the CLI's `jobs run --here` too). A
    summary message runs the fair queue's next summary instead, which may be another user's: one
    message per job, so every queued summary runs, in turn (storage.jobs.fair_queue)."""
    settings = load_settings()
    ensure_schema(settings.db_url)
    with session_scope(settings.db_url) as session:
        fair = jobs.get(session, job_id).kind == "summarize"
    if fair and (job_id := jobs.take_next(settings.db_url, "summarize")) is None:
        return {"status": "refused", "message": "no summary is waiting"}
    with session_scope(settings.db_url) as session:
        job = jobs.get(session, job_id)
        kind, params = job.kind, dict(job.params)
    try:
        return jobs.run(settings.db_url, job_id, work_for(settings, kind, params))
    except (jobs.JobBusy, jobs.JobCancelled, jobs.JobError) as exc:
        log.info("job %s not run: %s", job_id, exc)
        return {"status": "refused", "message": str(exc)}


def _task(kind: str):
    def task(job_id: int) -> dict:
        return execute(job_id)

    task.__name__ = task.__qualname__ = kind
    task.__doc__ = f"Runs a {kind} job (its parameters are on the job row)."
    return celery_app.task(name=f"speechsum.{kind}")(task)


summarize, build_data, train, train_all, evaluate, refresh = (_task(kind) for kind in jobs.JOB_KINDS)


def _within_quota(session, settings: Settings, actor: str) -> None:
    """Refuses a summary past the user's quota of waiting ones, or when the whole queue is full."""
    queued = jobs.waiting(session, "summarize")
    mine, everyone = queued[actor], sum(queued.values())
    if mine >= settings.queue_per_user:
        raise jobs.JobError(f"you already have {mine} summaries waiting (the limit is {settings.queue_per_user}); "
                            "try again when one is done")
    if everyone >= settings.queue_max:
        raise jobs.JobError(f"the queue is full ({everyone} summaries waiting); try again in a few minutes")


def submit(settings: Settings, kind: str, params: dict | None = None, actor: str = "") -> int:
    """Queues a job: a row in SQL (what the admin tab and the CLI read), then a message to the workers."""
    ensure_schema(settings.db_url)
    with session_scope(settings.db_url) as session:
        if reason := jobs.busy(session, kind):
            raise jobs.JobBusy(f"{reason}; wait for it or cancel it")
        if kind == "summarize":
            _within_quota(session, settings, actor)
        job_id = jobs.create(session, kind, params, actor).id
    app_for(settings).send_task(f"speechsum.{kind}", args=[job_id], task_id=f"job-{job_id}")
    return job_id


def stop_summaries(settings: Settings, owner: str) -> str:
    """The page's Stop: ends the owner's waiting summaries at once and their running ones at the next
    chunk; the pages following them then say "stopped". Says what it did."""
    ensure_schema(settings.db_url)
    with session_scope(settings.db_url) as session:
        stopped = jobs.cancel_mine(session, owner)
    if not stopped:
        return "Nothing of yours is being summarized."
    what = "summary" if len(stopped) == 1 else "summaries"
    return f"Stopping {len(stopped)} {what} (job {', '.join(map(str, stopped))})."


def send_again(settings: Settings, job_id: int) -> None:
    """One more message for a queued summary whose message the broker lost (a Redis restarted
    without persistence): a worker that gets it runs the fair queue's next summary, so an extra
    message never runs a job twice."""
    app_for(settings).send_task("speechsum.summarize", args=[job_id], task_id=f"job-{job_id}-{time.time_ns()}")


def summary_work(settings: Settings, params: dict, progress) -> dict:
    """A summary job: one summary of the recording, or two candidates for an A/B vote when `systems`
    names two. What the user did wrong (a bad file, an unknown system) fails the job with a message
    the user reads as it is; anything else stays in the job's log for the admin."""
    from app.pipeline import USER_ERRORS, compare_file, summarize_file

    common = {"query": params.get("query"), "uploader": params["uploader"],
              "original_name": params.get("original_name"), "progress": progress}
    try:
        if systems := params.get("systems"):
            made = compare_file(settings, params["path"], systems=tuple(systems), **common)
        else:
            made = (summarize_file(settings, params["path"], system=params.get("system", "cascade"), **common),)
    except USER_ERRORS as exc:
        raise jobs.JobError(str(exc)) from exc
    ids = [result.summary_id for result in made]
    return {"summary_ids": ids, "summary_id": ids[0], "message": "summary " + " and ".join(f"#{i}" for i in ids)}


def summarize_upload(settings: Settings, path: str, progress=None, **summary):
    """What the page and the API call for a summary: a worker makes it while this follows the job,
    so the web process runs no model. Without workers (`SPEECHSUM_WORKER=0` and no broker: one
    process, as in development) it is made here. Returns the pipeline's Result."""
    from app.pipeline import load_result, summarize_file

    if not settings.has_workers:
        return summarize_file(settings, path, progress=progress, **summary)
    (summary_id,) = in_background(settings, path, progress, **summary)
    return load_result(settings, summary_id, summary.get("uploader", ""))


def compare_upload(settings: Settings, path: str, progress=None, systems=("cascade", "cascade"), **summary):
    """Two candidate summaries for an A/B vote, made like any summary (by a worker when there are
    workers). Returns the two Results in the order to show them."""
    from app.pipeline import compare_file, load_result

    if not settings.has_workers:
        return compare_file(settings, path, progress=progress, systems=systems, **summary)
    left, right = in_background(settings, path, progress, systems=list(systems), **summary)
    return tuple(load_result(settings, i, summary.get("uploader", "")) for i in (left, right))


NO_WORKER = ("no worker is running, so nothing can be summarized now: start one with `speechsum worker` "
             "(`speechsum serve` restarts its own within seconds)")
NO_WORKER_GRACE_S = 20.0  # a worker being restarted is missing this long at most
NO_WORKER_WAIT_S = 3.0  # how long a new request waits for a worker to appear before it is refused
DATABASE_GRACE_S = 60.0  # how long a page waits for a database that stopped answering
LOST_MESSAGE_S = 15.0  # a summary queued this long while no summary runs lost its broker message


def _worker_within(settings: Settings, seconds: float) -> bool:
    """Whether a worker is alive, or comes alive within `seconds` (one being started or restarted)."""
    deadline = time.monotonic() + seconds
    while True:
        with session_scope(settings.db_url) as session:
            if jobs.workers_alive(session):
                return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.5)


def in_background(settings: Settings, path: str, progress=None, poll_s: float = 1.0, **params) -> list[int]:
    """Has a worker summarize a recording and follows the job: returns the ids of the summaries
    made, or raises JobError with a message fit for the user. The file is validated and copied into
    the store first, since a worker may not see the web app's temporary uploads (another container).
    With no worker alive it answers at once; a job that fails for a reason not the user's (its worker
    died, the database restarted) is sent again once (a summary is safe to redo)."""
    from storage.audio import inspect_audio
    from storage.files import store_audio

    progress = progress or (lambda *_: None)
    if not _worker_within(settings, NO_WORKER_WAIT_S):
        raise jobs.JobError(NO_WORKER)
    info = inspect_audio(path, settings.max_upload_bytes, settings.max_duration_s)
    stored, _ = store_audio(info.path, info.sha256, settings.audio_dir)
    params, uploader = {"path": str(stored)} | params, params.get("uploader", "")
    job_id, tries, seen_worker = submit(settings, "summarize", params, actor=uploader), 1, time.monotonic()
    sent = answered = seen_worker
    while True:
        try:
            with session_scope(settings.db_url) as session:
                jobs.free_dead_locks(session)
                job = jobs.get(session, job_id)
                status, fraction, message, result = job.status, job.progress, job.message, dict(job.result)
                place = jobs.position(session, job_id) if status == "queued" else None
                idle = status == "queued" and not jobs.running(session, "summarize")
                if jobs.workers_alive(session):
                    seen_worker = time.monotonic()
        except OperationalError:  # the database restarting: ask again, for a minute
            if time.monotonic() - answered > DATABASE_GRACE_S:
                raise jobs.JobError(f"the database is not answering; job {job_id} runs when it is back") from None
            time.sleep(1.0)
            continue
        answered = time.monotonic()
        if status == "queued":
            if time.monotonic() - seen_worker > NO_WORKER_GRACE_S:
                raise jobs.JobError(f"{NO_WORKER}; job {job_id} stays queued and runs when a worker starts")
            if idle and time.monotonic() - sent > LOST_MESSAGE_S:  # workers idle, this one waiting: lost
                log.warning("summary job %s waited %.0f s while no summary ran; sending it again", job_id,
                            time.monotonic() - sent)
                send_again(settings, job_id)
                sent = time.monotonic()
            progress(0.0, f"waiting for a worker: number {place or '?'} in line (job {job_id})")
        elif status == "running":
            progress(fraction, message)
        elif status == "succeeded":
            return result["summary_ids"]
        elif status == "failed" and not result.get("shown") and tries == 1:
            log.warning("summary job %s failed on the server (%s); sending it again", job_id, message[:200])
            job_id, tries, sent = submit(settings, "summarize", params, actor=uploader), 2, time.monotonic()
        elif status == "cancelled":
            raise jobs.JobError(f"the summary was stopped (job {job_id})")
        elif result.get("shown"):
            raise jobs.JobError(message)
        else:  # the details (SQL, paths, a traceback) are on the job, for the admin, not for the user
            log.error("summary job %s %s: %s", job_id, status, message)
            raise jobs.JobError(f"the summary failed on the server (error: job {job_id}); "
                                "the operator finds the details under that job")
        time.sleep(poll_s)


def scheduled_kind(session, settings: Settings) -> str:
    """What the schedule runs: a refresh of the served student, or, with none served, a whole chain."""
    return "refresh" if registry.served(session, "student") or not settings.train_when_empty else "train_all"


@celery_app.task(name="speechsum.scheduled_refresh")
def scheduled_refresh() -> dict:
    """The beat schedule's refresh: a job like one an admin starts, with the configured thresholds.
    Where no student is served yet (a fresh install, shipped versions refused), it trains one: every
    stage as one resumable job (`SPEECHSUM_TRAIN_WHEN_EMPTY` turns that off)."""
    settings = load_settings()
    ensure_schema(settings.db_url)
    with session_scope(settings.db_url) as session:
        kind = scheduled_kind(session, settings)
        if reason := jobs.busy(session, kind):
            return {"status": "refused", "message": reason}
        job_id = jobs.create(session, kind, {}, actor="schedule").id
    return execute(job_id)


@worker_ready.connect
def _free_dead_locks(**_kwargs) -> None:
    """A worker killed mid-job left its job "running" with the lock held: end it as failed. Then
    this worker starts beating, so the page knows a worker is alive."""
    settings = load_settings()
    ensure_schema(settings.db_url)
    with session_scope(settings.db_url) as session:
        for job_id in jobs.free_dead_locks(session):
            log.warning("job %s ended failed: its worker stopped while running it", job_id)
    jobs.Beat(settings.db_url, jobs.worker_beat, "worker heartbeat").start()


@worker_shutdown.connect
def _gone(**_kwargs) -> None:
    with session_scope(load_settings().db_url) as session:
        jobs.worker_beat(session, stopping=True)


@beat_embedded_init.connect
def _beat_dies_with_its_worker(**_kwargs) -> None:
    """The beat runs in a child process of the worker: a `kill -9` of the worker must not orphan it.
    A worker killed while this child was starting, before it asked for the parent-death signal,
    has already gone: then the child's parent is no longer the worker, and it ends itself."""
    from billiard.process import current_process  # celery's multiprocessing: it made this child

    from app.supervisor import die_with_parent

    die_with_parent()
    if os.getppid() != current_process()._parent_pid:
        os._exit(0)
