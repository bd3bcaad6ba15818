"""Jobs in SQL (SQLite and PostgreSQL): the run lock, progress, cancel, and locks of dead workers."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from storage import jobs
from storage.db import session_scope


def new_job(settings, kind: str = "refresh") -> int:
    with session_scope(settings.db_url) as s:
        return jobs.create(s, kind, {"force": True}, actor="alice").id


def job(settings, job_id: int):
    with session_scope(settings.db_url) as s:
        return jobs.get(s, job_id)


def test_a_job_runs_reports_progress_and_keeps_its_result(settings):
    job_id = new_job(settings)
    seen = []

    def work(progress):
        progress(0.5, "half way")
        seen.append((job(settings, job_id).status, job(settings, job_id).progress, job(settings, job_id).lock))
        return {"message": "all done", "answer": 42}

    assert jobs.run(settings.db_url, job_id, work)["answer"] == 42
    assert seen == [("running", 0.5, "training")]
    done = job(settings, job_id)
    assert (done.status, done.progress, done.message, done.lock, done.result["answer"]) == \
        ("succeeded", 1.0, "all done", None, 42)
    assert done.finished_at is not None and "all done" in done.log


def test_progress_is_written_at_most_twice_a_second_but_a_new_stage_at_once(settings):
    job_id = new_job(settings)
    seen = []

    def work(progress):
        progress(0.10, "teacher: starting")
        progress(0.11, "teacher: step 1")  # a small step within half a second: not written
        seen.append(job(settings, job_id).progress)
        progress(0.47, "kd: starting")  # a stage's start: written at once, however soon
        seen.append(job(settings, job_id).progress)
        return {}

    jobs.run(settings.db_url, job_id, work)
    assert seen == [0.10, 0.47]


def test_a_failing_job_ends_failed_with_the_error_and_frees_the_lock(settings):
    job_id = new_job(settings)
    out = jobs.run(settings.db_url, job_id, lambda progress: 1 / 0)
    done = job(settings, job_id)
    assert out["status"] == done.status == "failed" and done.lock is None
    assert "ZeroDivisionError" in done.message and "1 / 0" in done.result["traceback"]


def test_only_one_training_job_runs_at_a_time(settings):
    first, second = new_job(settings, "refresh"), new_job(settings, "train")
    inside, release = threading.Event(), threading.Event()

    def slow(progress):
        inside.set()
        release.wait(10)
        return {}

    runner = threading.Thread(target=jobs.run, args=(settings.db_url, first, slow))
    runner.start()
    inside.wait(10)
    with pytest.raises(jobs.JobBusy, match=f"job {first}, refresh"):
        jobs.run(settings.db_url, second, lambda progress: {})
    release.set()
    runner.join()
    assert job(settings, second).status == "failed" and "refused" in job(settings, second).message
    assert job(settings, first).status == "succeeded"
    third = new_job(settings)  # the lock is free again
    assert jobs.run(settings.db_url, third, lambda progress: {})["status"] == "succeeded"


def test_cancel_stops_a_running_job_at_its_next_step_and_a_queued_one_at_once(settings):
    queued = new_job(settings, "evaluate")
    with session_scope(settings.db_url) as s:
        assert jobs.cancel(s, queued).status == "cancelled"
    with pytest.raises(jobs.JobCancelled):
        jobs.run(settings.db_url, queued, lambda progress: {})

    job_id, steps = new_job(settings), []

    def loop(progress):
        for step in range(100):
            if step == 3:
                with session_scope(settings.db_url) as s:
                    jobs.cancel(s, job_id)
            progress(step / 100, f"step {step}")
            steps.append(step)
            time.sleep(0.3)  # progress is written (and the cancel flag read) at most twice a second
        return {}

    jobs.run(settings.db_url, job_id, loop)
    done = job(settings, job_id)
    assert done.status == "cancelled" and done.lock is None and 3 <= len(steps) <= 5
    with session_scope(settings.db_url) as s, pytest.raises(jobs.JobError, match="already ended"):
        jobs.cancel(s, job_id)


def test_the_lock_of_a_killed_worker_is_freed_and_its_job_marked_failed(settings):
    dead = new_job(settings)
    jobs.claim(settings.db_url, dead, worker=f"{socket.gethostname()}:999999999")  # no such process
    fresh = new_job(settings)
    assert jobs.run(settings.db_url, fresh, lambda progress: {})["status"] == "succeeded"
    gone = job(settings, dead)
    assert gone.status == "failed" and "stopped while running" in gone.message and gone.lock is None


def test_unknown_kinds_and_jobs_are_refused(settings):
    with session_scope(settings.db_url) as s:
        with pytest.raises(jobs.JobError, match="unknown job kind"):
            jobs.create(s, "mine-bitcoin")
        with pytest.raises(jobs.JobError, match="no job 999"):
            jobs.get(s, 999)


def test_a_heartbeat_is_written_while_a_long_step_holds_the_work(settings, monkeypatch):
    monkeypatch.setattr(jobs, "HEARTBEAT_S", 0.1)
    job_id, beats = new_job(settings), []

    def one_long_step(progress):
        for _ in range(3):
            time.sleep(0.4)  # no progress report in here
            beats.append(job(settings, job_id).heartbeat_at)
        return {}

    assert jobs.run(settings.db_url, job_id, one_long_step)["status"] == "succeeded"
    assert beats == sorted(beats) and len(set(beats)) == 3


def test_a_stale_heartbeat_frees_the_lock_and_so_does_a_zombie_worker(settings):
    import subprocess
    from datetime import timedelta

    from storage.schema import utcnow

    stale = new_job(settings)
    jobs.claim(settings.db_url, stale, worker=jobs.this_worker())  # this process: alive, but silent
    with session_scope(settings.db_url) as s:
        jobs.get(s, stale).heartbeat_at = utcnow() - timedelta(seconds=jobs.STALE_S + 1)
    with session_scope(settings.db_url) as s:
        assert jobs.busy(s, "train") is None
    assert job(settings, stale).status == "failed" and job(settings, stale).lock is None

    killed = subprocess.Popen(["sleep", "60"])
    killed.kill()
    time.sleep(0.3)  # dead, and not reaped: a zombie, which still answers kill(pid, 0)
    zombie = new_job(settings)
    jobs.claim(settings.db_url, zombie, worker=f"{socket.gethostname()}:{killed.pid}")
    with session_scope(settings.db_url) as s:
        assert [j.id for j in jobs.listing(s) if j.status == "running"] == []
    assert job(settings, zombie).status == "failed"
    killed.wait()


def test_cancelling_a_job_whose_worker_died_ends_it_at_once(settings):
    job_id = new_job(settings)
    jobs.claim(settings.db_url, job_id, worker=f"{socket.gethostname()}:999999999")
    with session_scope(settings.db_url) as s:
        done = jobs.cancel(s, job_id)
        assert done.status == "cancelled" and done.lock is None and "had stopped" in done.message


def test_a_worker_counts_as_alive_while_it_beats_and_is_gone_when_stopped_silent_or_dead(settings):
    from datetime import timedelta

    from storage.schema import Worker, utcnow

    with session_scope(settings.db_url) as s:
        assert jobs.workers_alive(s) == []
        jobs.worker_beat(s)  # this process
        jobs.worker_beat(s, f"{socket.gethostname()}:999999999")  # no such process
        jobs.worker_beat(s, "other-host:7")
        jobs.worker_beat(s, "silent-host:8")
        s.get(Worker, "silent-host:8").heartbeat_at = utcnow() - timedelta(seconds=jobs.STALE_S + 1)
    with session_scope(settings.db_url) as s:
        assert jobs.workers_alive(s) == sorted([jobs.this_worker(), "other-host:7"])
        jobs.worker_beat(s, "other-host:7", stopping=True)
        assert jobs.workers_alive(s) == [jobs.this_worker()]


def test_summaries_are_taken_round_robin_across_users_and_never_twice(settings):
    with session_scope(settings.db_url) as s:
        ids = [(who, jobs.create(s, "summarize", {}, actor=who).id) for who in "AAAAABCC"]
    order = {job_id: f"{who}{n}" for n, (who, job_id) in enumerate(ids)}
    with session_scope(settings.db_url) as s:
        assert [order[j.id] for j in jobs.fair_queue(s)] == ["A0", "B5", "C6", "A1", "C7", "A2", "A3", "A4"]
        assert jobs.position(s, ids[5][1]) == 2 and jobs.waiting(s, "summarize")["A"] == 5
    taken = [jobs.take_next(settings.db_url, "summarize", worker=f"w{i}") for i in range(9)]
    assert [order[t] for t in taken[:8]] == ["A0", "B5", "C6", "A1", "C7", "A2", "A3", "A4"] and taken[8] is None

    with session_scope(settings.db_url) as s:  # A has been served: a newcomer D, and B again, go before A
        late = {jobs.create(s, "summarize", {}, actor=who).id: who for who in "AADB"}
    assert [late[jobs.take_next(settings.db_url)] for _ in range(4)] == ["D", "B", "A", "A"]
    with session_scope(settings.db_url) as s:
        assert jobs.position(s, ids[0][1]) is None and jobs.get(s, ids[0][1]).worker == "w0"


def test_two_workers_taking_at_once_never_take_the_same_summary(settings):
    with session_scope(settings.db_url) as s:
        for who in "ABCDEFGH":
            jobs.create(s, "summarize", {}, actor=who)
    taken: list[int | None] = []
    threads = [threading.Thread(target=lambda: taken.extend(jobs.take_next(settings.db_url) for _ in range(3)))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = [t for t in taken if t is not None]
    assert len(got) == 8 and len(set(got)) == 8
