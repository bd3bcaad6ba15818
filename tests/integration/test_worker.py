"""The Celery worker with the embedded broker (filesystem, no server) and with a real Redis: a job's
round trip, its progress, cancel, a worker killed mid-stage, two refreshes at once.

Models are tiny random-weight ones saved to disk (tests/helpers/tiny.py), so the worker process
loads them from their checkpoints as it would real ones."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.worker import submit
from bench import services
from storage import jobs, registry
from storage.db import session_scope, upgrade
from storage.settings import load_settings
from tests.helpers.store import FAST, add_upload_with_thumbs
from tests.helpers.tiny import served_disk_student, tiny_bases, write_gate_data

pytestmark = pytest.mark.services

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def redis_url():
    try:
        with services.redis_server() as server:
            yield server.url
    except services.ServiceError as exc:
        pytest.fail(str(exc))


@pytest.fixture(params=["embedded", "redis"])
def loop(request, data_env, tmp_path, monkeypatch):
    """Settings with a served tiny student, two users' uploads with votes, and the broker of the param."""
    _, lm = tiny_bases(tmp_path / "bases")
    monkeypatch.setenv("SPEECHSUM_LLM_MODEL", lm)
    monkeypatch.setenv("SPEECHSUM_ASR_MODEL", "tiny.en")
    monkeypatch.setenv("SPEECHSUM_SHARED_DATA", str(write_gate_data(tmp_path / "shared")))
    if request.param == "redis":
        monkeypatch.setenv("SPEECHSUM_BROKER_URL", request.getfixturevalue("redis_url"))
    settings = load_settings()
    upgrade(settings.db_url)
    served_disk_student(settings, tmp_path)
    add_upload_with_thumbs(settings, tmp_path, 2)
    return settings


def start_worker(log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "app.cli", "worker", "--no-beat"], cwd=REPO, env=dict(os.environ),
                                stdout=out, stderr=out)


def stop(worker: subprocess.Popen) -> None:
    worker.terminate()
    try:
        worker.wait(20)
    except subprocess.TimeoutExpired:
        worker.kill()


def job_of(settings, job_id: int):
    with session_scope(settings.db_url) as s:
        return jobs.get(s, job_id)


def wait_for(settings, job_id: int, done, timeout_s: float = 120, log: Path | None = None):
    deadline, seen = time.monotonic() + timeout_s, []
    while time.monotonic() < deadline:
        job = job_of(settings, job_id)
        seen.append((job.status, job.progress))
        if done(job):
            return job, seen
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} never got there: {seen[-5:]}\n{log.read_text()[-3000:] if log else ''}")


def ended(job) -> bool:
    return job.status in ("succeeded", "failed", "cancelled")


def served_name(settings) -> str:
    with session_scope(settings.db_url) as s:
        return registry.served(s, "student").name


def test_a_refresh_job_round_trips_through_the_worker_with_progress(loop, tmp_path):
    worker = start_worker(tmp_path / "worker.log")
    try:
        job_id = submit(loop, "refresh", FAST | {"force": True, "margin": 100.0}, actor="test")
        job, seen = wait_for(loop, job_id, ended, log=tmp_path / "worker.log")
    finally:
        stop(worker)
    assert job.status == "succeeded", job.log
    assert job.result["outcome"] in ("promoted", "refused") and job.version_id is not None
    progress = [p for status, p in seen if status == "running"]
    assert progress and any(0 < p < 1 for p in progress) and job.progress == 1.0


def test_cancel_stops_a_running_refresh_and_frees_the_lock(loop, tmp_path):
    before = served_name(loop)
    worker = start_worker(tmp_path / "worker.log")
    try:
        job_id = submit(loop, "refresh", FAST | {"force": True, "minutes": 5.0, "epochs": 10_000})
        wait_for(loop, job_id, lambda j: "step" in j.message, log=tmp_path / "worker.log")
        with session_scope(loop.db_url) as s:
            jobs.cancel(s, job_id)
        job, _ = wait_for(loop, job_id, ended, timeout_s=60, log=tmp_path / "worker.log")
    finally:
        stop(worker)
    assert job.status == "cancelled" and job.lock is None
    assert served_name(loop) == before


def test_a_worker_killed_mid_stage_leaves_serving_alone_and_the_next_refresh_completes(loop, tmp_path):
    before = served_name(loop)
    log = tmp_path / "worker.log"
    worker = start_worker(log)
    try:
        job_id = submit(loop, "refresh", FAST | {"force": True, "minutes": 5.0, "epochs": 10_000})
        wait_for(loop, job_id, lambda j: "step" in j.message, log=log)
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        assert served_name(loop) == before
        worker = start_worker(log)  # a new worker ends the dead one's job and frees its lock
        dead, _ = wait_for(loop, job_id, ended, timeout_s=60, log=log)
        assert dead.status == "failed" and "stopped while running" in dead.message and dead.lock is None
        again = submit(loop, "refresh", FAST | {"force": True, "margin": 100.0})
        job, _ = wait_for(loop, again, ended, log=log)
    finally:
        stop(worker)
    assert job.status == "succeeded", job.log
    assert served_name(loop) in (before, job.result["candidate"])


def test_two_refreshes_at_once_one_runs_the_other_is_refused(loop, tmp_path):
    log = tmp_path / "worker.log"
    worker = start_worker(log)
    try:
        first = submit(loop, "refresh", FAST | {"force": True, "minutes": 5.0, "epochs": 10_000})
        wait_for(loop, first, lambda j: j.status == "running", log=log)
        with pytest.raises(jobs.JobBusy, match=f"job {first}"):
            submit(loop, "refresh", FAST | {"force": True})
        with session_scope(loop.db_url) as s:  # a second one that got past the check still cannot run
            second = jobs.create(s, "refresh", {"force": True}).id
        with pytest.raises(jobs.JobBusy):
            jobs.claim(loop.db_url, second)
        with session_scope(loop.db_url) as s:
            jobs.cancel(s, first)
        wait_for(loop, first, ended, timeout_s=60, log=log)
    finally:
        stop(worker)
    assert job_of(loop, second).status == "failed" and "refused" in job_of(loop, second).message


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _until(check, timeout_s: float):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(0.2)
    return check()


def test_serve_runs_two_workers_and_restarts_a_killed_one_whose_beat_goes_with_it(data_env, monkeypatch):
    """What `speechsum serve` runs with `SPEECHSUM_WORKER_PROCESSES=2`: two supervised workers, the
    beat inside the first only. After `kill -9` of that worker, its beat process ends too (no
    orphan), a new first worker with a new beat runs, and the second worker was left alone."""
    from app.supervisor import Supervisor

    monkeypatch.chdir(REPO)
    monkeypatch.setenv("SPEECHSUM_WORKER_PROCESSES", "2")
    settings = load_settings()
    upgrade(settings.db_url)  # as `make serve` does first: the test reads the workers table at once
    supervisor = Supervisor(settings.worker_count, restart_s=0.5)
    supervisor.start()
    try:
        first, second = (proc.pid for proc in supervisor.procs)
        beat = _until(lambda: _children(first), 60)
        assert beat, "the first worker started no beat process"
        assert _until(lambda: len(_alive_now(settings)) == 2, 60), _alive_now(settings)
        assert not _children(second), "only the first worker runs the beat"
        os.kill(first, signal.SIGKILL)
        assert _until(lambda: not any(map(_running, beat)), 10), f"the beat {beat} outlived its worker"
        assert _until(lambda: supervisor.procs[0].pid != first and supervisor.procs[0].poll() is None, 10)
        assert _until(lambda: _children(supervisor.procs[0].pid), 60)  # the new worker's beat
        assert supervisor.restarts == 1 and supervisor.procs[1].pid == second
    finally:
        supervisor.stop()
    assert all(proc.poll() is not None for proc in supervisor.procs)


def test_the_page_knows_at_once_whether_a_worker_is_alive(data_env, tmp_path):
    """A worker beats while it runs; after `kill -9` it counts as gone at once, and a long recording
    sent from the page is answered within 5 s with what to do, instead of waiting forever."""
    from app.worker import NO_WORKER, in_background

    settings = load_settings()
    upgrade(settings.db_url)
    worker = start_worker(tmp_path / "worker.log")
    try:
        name = f"{socket.gethostname()}:{worker.pid}"
        deadline = time.monotonic() + 60
        while name not in _alive_now(settings) and time.monotonic() < deadline:
            time.sleep(0.3)
        assert name in _alive_now(settings), (tmp_path / "worker.log").read_text()[-2000:]
        worker.kill()
        worker.wait()
        assert name not in _alive_now(settings)
        started = time.monotonic()
        with pytest.raises(jobs.JobError, match="no worker is running"):
            in_background(settings, str(tmp_path / "long.wav"))
        assert time.monotonic() - started < 5 and NO_WORKER.startswith("no worker")
    finally:
        worker.kill()


def _alive_now(settings) -> list[str]:
    with session_scope(settings.db_url) as session:
        return jobs.workers_alive(session)


def test_a_user_past_the_quota_of_waiting_summaries_is_told_and_nothing_is_queued(data_env, monkeypatch):
    monkeypatch.setenv("SPEECHSUM_QUEUE_PER_USER", "2")
    monkeypatch.setenv("SPEECHSUM_QUEUE_MAX", "3")
    settings = load_settings()
    upgrade(settings.db_url)
    for _ in range(2):
        submit(settings, "summarize", {"path": "x.wav", "uploader": "alice"}, actor="alice")
    with pytest.raises(jobs.JobError, match="you already have 2 summaries waiting"):
        submit(settings, "summarize", {"path": "x.wav", "uploader": "alice"}, actor="alice")
    submit(settings, "summarize", {"path": "y.wav", "uploader": "bob"}, actor="bob")
    with pytest.raises(jobs.JobError, match="the queue is full"):
        submit(settings, "summarize", {"path": "z.wav", "uploader": "carol"}, actor="carol")
    with session_scope(settings.db_url) as session:
        assert [j.actor for j in jobs.fair_queue(session)] == ["alice", "bob", "alice"]
