"""How the web process follows a summary job (app.worker.in_background), on the real jobs table and
the embedded broker, with the worker's side played by this test through storage.jobs: a job that
failed on the server is sent again once, a second failure reaches the user as one line with the
job's number, and a job whose broker message was lost gets another message."""

from __future__ import annotations

import threading
import time

import pytest

from app import worker
from storage import jobs
from storage.db import session_scope
from tests.conftest import tone, write_wav


def play_worker(settings, outcomes: list[str], wait_s: float = 0.0) -> threading.Thread:
    """Takes the queue's next summary for each outcome and ends it so: "fail" (a server error) or "ok"."""
    def run() -> None:
        time.sleep(wait_s)
        for outcome in outcomes:
            while (job_id := jobs.take_next(settings.db_url)) is None:
                time.sleep(0.05)
            if outcome == "fail":
                jobs.finish(settings.db_url, job_id, "failed", "OperationalError: server closed the connection "
                            "(SELECT * FROM jobs WHERE id = %(id)s)", {"traceback": "..."})
            else:
                jobs.finish(settings.db_url, job_id, "succeeded", "done", {"summary_ids": [41 + job_id]})
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.fixture
def alive(settings):
    with session_scope(settings.db_url) as session:
        jobs.worker_beat(session)  # this process counts as a live worker
    return settings


def sent_jobs(settings) -> list[str]:
    with session_scope(settings.db_url) as session:
        return [(j.status, j.actor) for j in jobs.listing(session)]


def test_a_job_that_failed_on_the_server_is_sent_again_once(alive, tmp_path):
    clip = write_wav(tmp_path / "clip.wav", tone(2.0))
    play_worker(alive, ["fail", "ok"])
    assert worker.in_background(alive, str(clip), poll_s=0.05, uploader="client:someone1") == [43]
    assert sorted(sent_jobs(alive)) == [("failed", "client:someone1"), ("succeeded", "client:someone1")]


def test_a_second_failure_reaches_the_user_as_one_line_with_the_job_and_no_internals(alive, tmp_path):
    clip = write_wav(tmp_path / "clip.wav", tone(2.0))
    play_worker(alive, ["fail", "fail"])
    with pytest.raises(jobs.JobError) as failed:
        worker.in_background(alive, str(clip), poll_s=0.05, uploader="client:someone1")
    assert "failed on the server (error: job 2)" in str(failed.value)
    assert "SELECT" not in str(failed.value) and "OperationalError" not in str(failed.value)


def test_a_summary_whose_message_was_lost_gets_another(alive, tmp_path, monkeypatch):
    monkeypatch.setattr(worker, "LOST_MESSAGE_S", 0.3)
    queue = alive.data_dir / "broker" / "queue"
    clip = write_wav(tmp_path / "clip.wav", tone(2.0))
    play_worker(alive, ["ok"], wait_s=1.5)  # the worker sees nothing for a while
    assert worker.in_background(alive, str(clip), poll_s=0.05, uploader="client:someone1") == [42]
    assert len(list(queue.iterdir())) >= 2  # the first message and at least one sent again


def test_a_user_stops_their_own_summaries_waiting_and_running_and_no_one_elses(alive, tmp_path):
    clip = write_wav(tmp_path / "clip.wav", tone(2.0))
    said = {}

    def follow(key: str, who: str) -> None:
        try:
            said[key] = worker.in_background(alive, str(clip), poll_s=0.05, uploader=who)
        except jobs.JobError as exc:
            said[key] = str(exc)

    followers = []
    for number, (key, who) in enumerate([("running", "client:someone1"), ("waiting", "client:someone1"),
                                         ("other", "client:other222")], start=1):
        followers.append(threading.Thread(target=follow, args=(key, who)))
        followers[-1].start()
        while len(sent_jobs(alive)) < number:  # jobs 1, 2, 3 in this order
            time.sleep(0.02)

    def chunks(progress) -> dict:  # a summary that reports after each chunk, as the pipeline does
        for i in range(200):
            progress(i / 200, f"chunk {i}")
            time.sleep(0.05)
        return {"summary_ids": [99]}

    running = threading.Thread(target=jobs.run, args=(alive.db_url, 1, chunks))
    running.start()
    while sent_jobs(alive)[-1][0] != "running":  # listing is newest first: job 1 is the last
        time.sleep(0.02)
    assert worker.stop_summaries(alive, "client:someone1") == "Stopping 2 summaries (job 1, 2)."
    running.join(timeout=10)
    for thread in followers[:2]:
        thread.join(timeout=10)
    assert said == {"running": "the summary was stopped (job 1)", "waiting": "the summary was stopped (job 2)"}
    assert [status for status, _ in sent_jobs(alive)] == ["queued", "cancelled", "cancelled"]  # the other's waits
    assert worker.stop_summaries(alive, "client:someone1") == "Nothing of yours is being summarized."
    with session_scope(alive.db_url) as session:
        jobs.cancel(session, 3)  # the other user's follower ends too
    followers[2].join(timeout=10)
