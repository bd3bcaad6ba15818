"""The admin tab in headless Chromium, on the real app with its own worker and the embedded broker:
an admin logs in, starts a refresh, watches its progress and sees the new version; a non-admin
sees no admin tab. Models are the tiny ones saved to disk (tests/helpers/tiny.py)."""

from __future__ import annotations

import re
import time

import gradio as gr
import pytest
from playwright.sync_api import Page, expect

from app import admin
from storage import registry
from storage.db import session_scope, upgrade
from storage.settings import load_settings
from tests.conftest import ARTIFACTS, running_app, speechsum_env
from tests.helpers.browser import browsing
from tests.helpers.store import add_upload_with_thumbs
from tests.helpers.tiny import served_disk_student, tiny_bases, write_gate_data

pytestmark = [pytest.mark.browser, pytest.mark.services]
SHOT = ARTIFACTS / "e2e" / "admin-after-refresh.png"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    root = tmp_path_factory.mktemp("admin")
    _, lm = tiny_bases(root / "bases")
    env = speechsum_env(root) | {
        "SPEECHSUM_USERS": "alice:wonderland,bob:builder", "SPEECHSUM_ADMINS": "alice", "SPEECHSUM_WORKER": "1",
        "SPEECHSUM_LLM_MODEL": lm, "SPEECHSUM_ASR_MODEL": "tiny.en",
        "SPEECHSUM_SHARED_DATA": str(write_gate_data(root / "shared")),
        "SPEECHSUM_REFRESH_MINUTES": "0.2", "SPEECHSUM_REFRESH_EVAL_ITEMS": "2", "SPEECHSUM_REFRESH_MARGIN": "100",
        "SPEECHSUM_REFRESH_FACTS_MEETINGS": "0"}
    settings = load_settings(env)
    upgrade(settings.db_url)
    served_disk_student(settings, root)
    add_upload_with_thumbs(settings, root, 2)
    with running_app(env) as url:
        yield url, settings


def log_in(page: Page, name: str, password: str) -> None:
    page.get_by_label(re.compile("username", re.I)).fill(name)
    page.get_by_label(re.compile("password", re.I)).fill(password)
    page.get_by_role("button", name=re.compile("log ?in", re.I)).click()
    expect(page.get_by_role("tab", name="Summarize")).to_be_visible(timeout=30_000)


def test_an_admin_starts_a_refresh_watches_it_and_sees_the_new_version(app):
    url, settings = app
    with browsing(url) as page:
        log_in(page, "alice", "wonderland")
        page.get_by_role("tab", name="Admin").click()
        page.locator("#admin-refresh").click()
        expect(page.locator("#admin-note")).to_contain_text("Refresh queued as job", timeout=30_000)
        row = page.locator("#admin-jobs tr[id^=job-]").first
        statuses, deadline = [], time.monotonic() + 240
        while time.monotonic() < deadline:
            status = row.get_attribute("data-status", timeout=30_000)
            statuses.append((status, row.locator("progress").get_attribute("value")))
            if status in ("succeeded", "failed", "cancelled"):
                break
            time.sleep(0.3)
        assert statuses[-1][0] == "succeeded", (statuses[-5:], row.inner_text())
        assert any(s == "running" for s, _ in statuses), statuses
        with session_scope(settings.db_url) as s:
            newest = max(registry.versions(s, "student"), key=lambda v: v.id).name
        assert newest.startswith("dpo-") and newest != "dpo-tiny"
        expect(page.locator("#admin-versions")).to_contain_text(newest, timeout=10_000)
        SHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOT), full_page=True)


def test_a_user_who_is_not_an_admin_sees_no_admin_tab(app):
    url, _ = app
    with browsing(url) as page:
        log_in(page, "bob", "builder")
        page.wait_for_timeout(2000)  # the page's load event has run
        expect(page.get_by_role("tab", name="Admin")).to_have_count(0)


def test_every_admin_action_refuses_a_non_admin_clearly(app):
    _, settings = app
    with pytest.raises(admin.NotAdmin, match="admins only"):
        admin.require_admin(settings, "bob", "127.0.0.1")
    assert admin.require_admin(settings, "alice", "10.0.0.9") == "alice"
    no_login = load_settings(speechsum_env(settings.data_dir.parent) | {"SPEECHSUM_LOCAL_ADMIN": "1"})
    assert admin.is_admin(no_login, None, "127.0.0.1") and not admin.is_admin(no_login, None, "10.0.0.9")
    assert not admin.is_admin(load_settings(speechsum_env(settings.data_dir.parent)), None, "127.0.0.1")


def test_the_admin_handlers_check_on_the_server_not_only_in_the_page(app):
    _, settings = app
    from app import admin_tab

    with gr.Blocks() as page, gr.Tabs():
        admin_tab.build(settings, page)
    names = {"tick", "start", "train_everything", "stop", "serve_version", "roll_back"}
    handlers = [fn for fn in page.fns.values() if fn.name in names]
    assert {fn.name for fn in handlers} == names
    bob = gr.Request(username="bob")
    for fn in handlers:
        args = {"stop": [1], "serve_version": ["dpo-tiny"]}.get(fn.name, [])
        with pytest.raises(gr.Error, match="admins only"):
            fn.fn(*args, bob)


@pytest.mark.real
@pytest.mark.slow  # 82 s on 2 cores: it starts `speechsum serve` with real workers
def test_with_workers_every_summary_is_a_workers_job_and_the_web_process_runs_no_model(tmp_path):
    """With workers, a summary from the page, one from the API and an A/B pair are each a job run by
    a worker (the web process loads no model): the page shows the job's progress and its summary.
    Gradio's temporary copies of the uploads are deleted once the recordings are stored."""
    from gradio_client import Client, handle_file
    from sqlalchemy import select

    from storage import schema
    from tests.helpers.browser import SPEECH, upload
    from training.data.tts import synthesize

    env = speechsum_env(tmp_path) | {"SPEECHSUM_WORKER": "1", "SPEECHSUM_WORKER_PROCESSES": "1"}
    wav = synthesize(SPEECH, tmp_path / "clip.wav")
    with running_app(env) as url, browsing(url) as page:
        _wait_for_a_worker(load_settings(env))
        upload(page, wav)
        page.locator("#summarize").click()
        expect(page.locator("#current-up")).to_be_visible(timeout=240_000)
        expect(page.locator("#current-transcript textarea")).to_have_value(re.compile(r"40,000"))
        api = Client(url, verbose=False)
        made = api.predict(handle_file(str(wav)), "", "api-user", "cascade", api_name="/summarize")
        uploads = tmp_path / "gradio"
        assert not [p for p in uploads.rglob("*") if p.is_file() and p.suffix == ".wav"]  # stored, then deleted
        pair = api.predict(handle_file(str(wav)), "", "api-user", "samples", api_name="/compare")
        page.locator("#audio").get_by_role("button", name="Clear").click()  # the user stops a summary under way
        upload(page, _longer(wav, tmp_path / "long.wav", times=8))
        page.locator("#summarize").click()
        _wait_for_job(load_settings(env), 4)
        page.locator("#stop-summary").click()
        expect(page.get_by_text("the summary was stopped (job 4)")).to_be_visible(timeout=30_000)
    settings = load_settings(env)
    with session_scope(settings.db_url) as s:
        done = s.scalars(select(schema.Job).order_by(schema.Job.id)).all()
        assert [(j.kind, j.status) for j in done] == [("summarize", "succeeded")] * 3 + [("summarize", "cancelled")]
        assert done[1].result["summary_ids"] == [made["summary_id"]]
        assert sorted(done[2].result["summary_ids"]) == sorted([pair["left"]["summary_id"],
                                                                pair["right"]["summary_id"]])


def _longer(wav, out, times: int):
    """The recording `times` over: a summary that runs long enough to be stopped."""
    import wave

    import numpy as np

    from tests.conftest import write_wav

    with wave.open(str(wav)) as w:
        rate, pcm = w.getframerate(), np.frombuffer(w.readframes(w.getnframes()), "<i2")
    return write_wav(out, np.tile(pcm.astype(np.float32) / 32767, times), rate)


def _wait_for_job(settings, job_id: int, timeout_s: float = 60) -> None:
    """Until job `job_id` is queued or running."""
    import time

    from storage import jobs

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with session_scope(settings.db_url) as session:
            if session.get(jobs.Job, job_id) is not None:
                return
        time.sleep(0.2)
    pytest.fail(f"job {job_id} was never sent")


def _wait_for_a_worker(settings, timeout_s: float = 90) -> None:
    """The worker that serve starts beats once it is ready (a few seconds after the page is up)."""
    import time

    from storage import jobs

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with session_scope(settings.db_url) as session:
            if jobs.workers_alive(session):
                return
        time.sleep(0.5)
    pytest.fail("no worker started")
