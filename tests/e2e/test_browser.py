"""The whole page in headless Chromium, on the real app with the real models, as a user would use it.

A bad upload first (the server must survive it), then a real one: summary, thumbs vote, SRT
download, an A/B vote, history search; the votes are then looked up in the database. The page
must load nothing from outside this machine. A screenshot after the summary and its vote goes to
test-artifacts/e2e/summary-and-vote.png.
"""

from __future__ import annotations

import os
import re

import numpy as np
import pytest
from gradio_client import Client, handle_file
from playwright.sync_api import expect
from sqlalchemy import select

from storage import schema
from storage.db import session_scope
from storage.settings import load_settings
from tests.conftest import ARTIFACTS, running_app, speechsum_env
from tests.helpers.browser import MODEL_RUN_MS, SPEECH, browsing, shown_id, upload
from training.data.tts import synthesize

pytestmark = pytest.mark.browser
SCREENSHOT = ARTIFACTS / "e2e" / "summary-and-vote.png"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    env = speechsum_env(tmp_path_factory.mktemp("e2e"))
    with running_app(env) as url:
        yield url, load_settings(env)




@pytest.fixture
def page(app):
    with browsing(app[0]) as page:
        yield page






@pytest.mark.real
def test_summarize_vote_download_compare_and_find_again(app, page, tmp_path):
    _, settings = app
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(np.random.default_rng(0).bytes(40_000))
    upload(page, garbage)
    page.locator("#summarize").click()
    expect(page.get_by_text("garbage.wav: not a readable audio file")).to_be_visible(timeout=60_000)

    page.reload()
    expect(page.locator("#no-student")).to_contain_text("speechsum train all")  # no student is served here
    expect(page.locator("#system").get_by_label("Student (hears the audio)")).to_have_count(0)
    upload(page, synthesize(SPEECH, tmp_path / "standup.wav"))
    page.locator("#query textarea, #query input").first.fill("What did we decide about the budget?")
    page.locator("#summarize").click()
    expect(page.locator("#current-up")).to_be_visible(timeout=MODEL_RUN_MS)
    expect(page.locator("#current-summary")).to_contain_text("What did we decide about the budget?")
    expect(page.locator("#current-transcript textarea")).to_have_value(re.compile(r"\[00:00 – 00:0\d\] .*40,000"))
    summary_id = shown_id(page, "#current-summary")
    # The panel's own player plays the stored recording; a time link in the key points moves it there.
    ready = "(id) => document.querySelector(id + ' audio') && document.querySelector(id + ' audio').readyState >= 1"
    page.wait_for_function(ready, arg="#current-player", timeout=20_000)
    link = page.locator('#current-summary a[href^="#t="]').last
    at = float(link.get_attribute("href")[3:])
    page.evaluate("(t) => { document.querySelector('#current-player audio').currentTime = t; }", at + 3)
    page.wait_for_function("(t) => document.querySelector('#current-player audio').currentTime > t", arg=at + 2)
    link.click()
    page.wait_for_function("(at) => Math.abs(document.querySelector('#current-player audio').currentTime - at) < 0.8",
                           arg=at, timeout=10_000)
    uploads = settings.data_dir.parent / "gradio"
    assert not [p for p in uploads.rglob("*.wav")], "the upload's temporary copy outlived its storing"

    page.locator("#current-up").click()
    expect(page.locator("#current-vote-note")).to_contain_text("good")
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    with page.expect_download() as download:
        page.locator("#current-download-srt").click()
    srt = tmp_path / download.value.suggested_filename
    download.value.save_as(srt)
    assert srt.name == f"speechsum-{summary_id}.srt"
    assert re.match(r"1\n00:00:00,000 --> 00:00:0\d,\d{3}\n\S", srt.read_text())

    page.get_by_role("tab", name="Compare (A/B)").click()
    page.locator("#make-pair").click()
    expect(page.locator("#vote-right")).to_be_enabled(timeout=MODEL_RUN_MS)
    left, right = shown_id(page, "#candidate-left"), shown_id(page, "#candidate-right")
    expect(page.locator("#comparing")).to_contain_text("Comparing standup.wav")
    expect(page.locator("#candidate-left")).not_to_contain_text("Key points")  # the summaries only
    page.locator("#vote-right").click()
    expect(page.locator("#ab-note")).to_contain_text("recorded")
    for choice in ("left", "right", "tie", "both_bad"):
        expect(page.locator(f"#vote-{choice}")).to_be_disabled()

    page.get_by_role("tab", name="History").click()
    expect(page.locator("#listing label")).to_have_count(3)
    page.locator("#search textarea, #search input").first.fill("no such words anywhere")
    page.locator("#search-button").click()
    expect(page.locator("#listing label")).to_have_count(0)
    page.locator("#search textarea, #search input").first.fill("BUDGET")
    page.locator("#search-button").click()
    expect(page.locator("#listing label").first).to_be_visible()
    page.locator("#listing label", has_text=f"#{summary_id} ").click()
    expect(page.locator("#past-vote-note")).to_contain_text("good")  # the vote given in the first tab
    page.wait_for_function(ready, arg="#past-player", timeout=20_000)
    page.locator("#past-down").click()
    expect(page.locator("#past-vote-note")).to_contain_text("bad")

    with session_scope(settings.db_url) as s:
        thumbs = s.scalars(select(schema.ThumbVote)).all()
        ab = s.scalars(select(schema.ABVote)).all()
        recordings = s.scalars(select(schema.Recording)).all()
        assert [(t.summary_id, t.value) for t in thumbs] == [(summary_id, -1)]  # replaced, not added
        assert [(v.left_summary_id, v.right_summary_id, v.choice) for v in ab] == [(left, right, "right")]
        voter = thumbs[0].voter
        assert voter.startswith("browser:") and ab[0].voter == voter
        assert [(r.original_name, r.uploader) for r in recordings] == [("standup.wav", voter)]


@pytest.mark.real
def test_the_api_summarizes_and_votes_like_the_page(app, tmp_path):
    url, settings = app
    wav = synthesize("The roof repair is booked for June, and Maria pays the invoice.", tmp_path / "roof.wav")
    api = Client(url, verbose=False)
    client_id = os.urandom(8).hex()
    done = api.predict(handle_file(str(wav)), "", client_id, api_name="/summarize")
    assert "june" in done["transcript"]["text"].lower() and done["system"] == "cascade"
    pair = api.predict(handle_file(str(wav)), "When is the roof repaired?", client_id, api_name="/compare")
    left, right = pair["left"]["summary_id"], pair["right"]["summary_id"]
    assert pair["left"]["transcript_id"] == done["transcript_id"]  # the same recording, not transcribed again
    api.predict(left, right, "both_bad", client_id, api_name="/ab_vote")
    with session_scope(settings.db_url) as s:
        vote = s.scalars(select(schema.ABVote).where(schema.ABVote.voter == f"client:{client_id}")).one()
        assert (vote.left_summary_id, vote.right_summary_id, vote.choice) == (left, right, "both_bad")


def test_an_oversized_upload_is_refused_in_the_page(tmp_path):
    env = speechsum_env(tmp_path) | {"SPEECHSUM_MAX_UPLOAD_MB": "0.05"}
    big = synthesize("This recording is longer than the tiny upload limit allows.", tmp_path / "big.wav")
    with running_app(env) as url, browsing(url) as page:
        page.locator("#audio input[type=file]").set_input_files(str(big))
        expect(page.get_by_text('File(s) exceed the maximum allowed size of 51.2 Kb: "big.wav"')).to_be_visible()
        page.locator("#summarize").click()
        expect(page.get_by_text("Upload or record a recording first.")).to_be_visible()
        assert not (tmp_path / "data" / "audio").exists()


@pytest.mark.real
def test_speakers_are_shown_and_renamed_in_the_page(app, page, tmp_path):
    from bench.speakers import spoken_meeting
    from tests.helpers.real import TURNS

    wav, _ = spoken_meeting(TURNS, tmp_path / "launch.wav")
    upload(page, wav)
    page.locator("#summarize").click()
    transcript = page.locator("#current-transcript textarea")
    expect(transcript).to_have_value(re.compile(r"\] Speaker 1: Good morning.*\] Speaker 2: Marketing", re.S),
                                     timeout=MODEL_RUN_MS)
    expect(page.locator("#current-speaker")).to_be_visible()
    page.locator("#current-speaker input").click()
    page.get_by_role("option", name="Speaker 2").click()
    page.locator("#current-speaker-name textarea, #current-speaker-name input").first.fill("Ben")
    page.locator("#current-rename").click()
    expect(transcript).to_have_value(re.compile(r"\] Ben: Marketing"), timeout=30_000)
    expect(transcript).not_to_have_value(re.compile(r"Speaker 2"))

    page.reload()  # the Summarize tab is empty now: compare a recording picked from history
    page.get_by_role("tab", name="Compare (A/B)").click()
    page.locator("#compare-recording input").click()
    page.get_by_role("option", name=re.compile(r"launch\.wav")).click()
    page.locator("#compare-query textarea, #compare-query input").first.fill("Who owns the press release?")
    page.locator("#make-pair").click()
    expect(page.locator("#comparing")).to_contain_text("Comparing launch.wav · question: Who owns the press release?",
                                                       timeout=MODEL_RUN_MS)
    expect(page.locator("#vote-left")).to_be_enabled()


@pytest.mark.real
def test_a_second_user_sees_their_place_in_the_queue_and_gets_what_they_asked(app, tmp_path):
    """Models run one at a time: a user whose summary waits behind another's sees where it stands,
    and the summary answers the question as it was when they clicked, not as edited since."""
    url, _ = app
    first = synthesize(SPEECH, tmp_path / "first.wav")
    second = synthesize("The second meeting only confirms the venue for the offsite.", tmp_path / "second.wav")
    with browsing(url) as a:
        b = a.context.browser.new_context().new_page()  # another user: a browser profile of their own
        b.goto(url)
        upload(a, first)
        upload(b, second)
        a.locator("#summarize").click()
        a.wait_for_timeout(2000)  # the first summary is running now
        question = b.locator("#query textarea, #query input").first
        question.fill("Where is the offsite?")
        b.locator("#summarize").click()
        expect(b.locator("body")).to_contain_text(re.compile(r"queue: \d+/\d+"), timeout=30_000)
        question.fill("A question typed after the click")  # while it waits: the click's inputs must hold
        expect(b.locator("#current-up")).to_be_visible(timeout=MODEL_RUN_MS)
        expect(b.locator("#current-summary")).to_contain_text("Question: Where is the offsite?")
        expect(a.locator("#current-up")).to_be_visible()


@pytest.mark.real
@pytest.mark.slow
def test_a_seven_minute_meeting_gets_timestamped_chapters(tmp_path):
    """Beyond 6 minutes a recording gets sections, each with its own summary (tiny.en for speed)."""
    from bench.facts import meetings, speak_meeting

    wav = speak_meeting(meetings()[9], tmp_path / "audio")  # 8 minutes written, about 7 spoken
    env = speechsum_env(tmp_path) | {"SPEECHSUM_ASR_MODEL": "tiny.en"}
    with running_app(env) as url, browsing(url) as page:
        upload(page, wav)
        page.locator("#summarize").click()
        expect(page.locator("#current-up")).to_be_visible(timeout=2 * MODEL_RUN_MS)
        summary = page.locator("#current-summary")
        expect(summary).to_contain_text("Chapters")
        expect(summary).to_contain_text(re.compile(r"00:00–0[4-6]:\d\d"))
        expect(summary).to_contain_text(re.compile(r"0[4-6]:\d\d–0[6-7]:\d\d"))


@pytest.mark.real
def test_a_recording_whose_summary_was_killed_is_summarized_again_from_history(app, page, tmp_path):
    from sqlalchemy import delete

    _, settings = app
    upload(page, synthesize("The kitchen refit costs four thousand dollars, and Jo books the plumber.",
                            tmp_path / "refit.wav"))
    page.locator("#summarize").click()
    expect(page.locator("#current-up")).to_be_visible(timeout=MODEL_RUN_MS)
    summary_id = shown_id(page, "#current-summary")
    with session_scope(settings.db_url) as s:  # as a kill during the summary step leaves it
        s.execute(delete(schema.Summary).where(schema.Summary.id == summary_id))

    page.get_by_role("tab", name="History").click()
    page.locator("#interrupted label", has_text="refit.wav").click()
    page.locator("#summarize-again").click()
    # The one sentence said shows once: in the text, the notes or the key points.
    expect(page.locator("#past-summary")).to_contain_text(re.compile("kitchen", re.I), timeout=MODEL_RUN_MS)
    expect(page.locator("#interrupted")).to_be_hidden()
    expect(page.locator("#listing label", has_text="refit.wav")).to_have_count(1)
