"""The named API endpoints, called with gradio_client against the real `speechsum serve` with login on.

Summaries are stored directly (as the pipeline stores them), so these need no model; the real-model
path through the API is in tests/e2e.
"""

from __future__ import annotations

import re

import gradio as gr
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError, AuthenticationError
from sqlalchemy import select

from app.api import owner
from storage import schema
from storage.db import session_scope, upgrade
from storage.settings import load_settings
from tests.conftest import add_summary, running_app, speechsum_env

pytestmark = pytest.mark.services

USERS = "alice:wonderland,bob:builder"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("web")
    env = speechsum_env(root) | {"SPEECHSUM_USERS": USERS}
    settings = load_settings(env)
    upgrade(settings.db_url)
    with running_app(env, log_path=root / "server.log") as url:
        yield url, settings


def client(url: str, name: str) -> Client:
    password = dict(pair.split(":") for pair in USERS.split(","))[name]
    return Client(url, auth=(name, password), verbose=False)


def thumbs(settings) -> list[tuple]:
    with session_scope(settings.db_url) as s:
        return [(v.voter, v.summary_id, v.value) for v in s.scalars(select(schema.ThumbVote))]


def ab_votes(settings) -> list[tuple]:
    with session_scope(settings.db_url) as s:
        return [(v.voter, v.left_summary_id, v.right_summary_id, v.choice) for v in s.scalars(select(schema.ABVote))]


def test_login_is_required(server):
    url, _ = server
    with pytest.raises(AuthenticationError, match="credentials were not provided"):
        Client(url, verbose=False)
    with pytest.raises(ValueError, match="Could not login"):
        Client(url, auth=("alice", "wrong"), verbose=False)


def test_thumbs_belong_to_the_logged_in_user_and_a_new_vote_replaces_the_old(server):
    url, settings = server
    sid = add_summary(settings, "user:alice", "Alice's summary.", name="thumbs.wav")
    alice = client(url, "alice")
    assert alice.predict(sid, 1, api_name="/thumb") == {"summary_id": sid, "value": 1}
    alice.predict(sid, -1, api_name="/thumb")
    assert [v for v in thumbs(settings) if v[1] == sid] == [("user:alice", sid, -1)]
    with pytest.raises(AppError, match="a thumb vote is \\+1 or -1, not 5"):
        alice.predict(sid, 5, api_name="/thumb")
    with pytest.raises(AppError, match=f"summary {sid} was not found"):
        client(url, "bob").predict(sid, 1, api_name="/thumb")


def test_ab_vote_records_the_sides_as_shown(server):
    url, settings = server
    a = add_summary(settings, "user:alice", "First candidate.", name="ab.wav")
    b = add_summary(settings, "user:alice", "Second candidate.", name="ab.wav")
    alice = client(url, "alice")
    alice.predict(b, a, "left", api_name="/ab_vote")
    assert ("user:alice", b, a, "left") in ab_votes(settings)
    alice.predict(a, b, "tie", api_name="/ab_vote")  # the same pair, shown the other way round
    mine = [v for v in ab_votes(settings) if {v[1], v[2]} == {a, b}]
    assert mine == [("user:alice", a, b, "tie")]
    with pytest.raises(AppError, match="an A/B choice is one of"):
        alice.predict(a, b, "maybe", api_name="/ab_vote")


def test_search_summary_and_export_see_only_your_own(server):
    url, settings = server
    mine = add_summary(settings, "user:bob", "The roof gets fixed in June.", "We fix the roof in June.",
                       name="roof.wav", query="When is the roof fixed?")
    bob, alice = client(url, "bob"), client(url, "alice")
    assert [item["summary_id"] for item in bob.predict("roof", api_name="/search")] == [mine]
    assert alice.predict("roof", api_name="/search") == []
    shown = bob.predict(mine, api_name="/summary")
    assert (shown["summary"], shown["query"], shown["transcript"]["text"]) == (
        "The roof gets fixed in June.", "When is the roof fixed?", "We fix the roof in June.")
    assert bob.predict(mine, "srt", api_name="/export") == "1\n00:00:00,000 --> 00:00:04,000\nWe fix the roof in June.\n"
    with pytest.raises(AppError, match="unknown format 'pdf'"):
        bob.predict(mine, "pdf", api_name="/export")
    with pytest.raises(AppError, match="was not found"):
        alice.predict(mine, api_name="/summary")


def test_owner_prefers_login_then_browser_then_client_then_session():
    request = gr.Request(username="carol", session_hash="s1")
    assert owner(request, "b" * 16, "c" * 16) == "user:carol"
    anonymous = gr.Request(session_hash="s1")
    assert owner(anonymous, "b" * 16, "c" * 16) == f"browser:{'b' * 16}"
    assert owner(anonymous, None, "c" * 16) == f"client:{'c' * 16}"
    assert owner(anonymous) == "session:s1"
    with pytest.raises(gr.Error, match="a client id is 8 to 64"):
        owner(anonymous, None, "../../etc")


def test_expected_errors_reach_the_user_and_log_one_line_not_a_traceback(server):
    url, settings = server
    alice = client(url, "alice")
    with pytest.raises(AppError, match="summary 424242 was not found"):
        alice.predict(424242, api_name="/summary")
    with pytest.raises(AppError, match="unknown format"):
        alice.predict(424242, "docx", api_name="/export")
    log = (settings.data_dir.parent / "server.log").read_text()
    assert re.search(r"refused \[[0-9a-f]{8}\]: summary 424242 was not found", log)
    assert re.search(r"refused \[[0-9a-f]{8}\]: unknown format 'docx'", log)
    assert "Traceback" not in log


def test_a_refused_upload_leaves_nothing_in_the_upload_folder(server, tmp_path):
    """Random bytes sent to /summarize: refused in one line, and Gradio's temporary copy is deleted
    at once (not after Gradio's 24 hours)."""
    from gradio_client import handle_file

    url, settings = server
    junk = tmp_path / "junk.wav"
    junk.write_bytes(bytes(range(256)) * 400)
    with pytest.raises(AppError, match="(?i)audio|decode|not a"):
        client(url, "alice").predict(handle_file(str(junk)), "", "", "cascade", api_name="/summarize")
    uploads = settings.data_dir.parent / "gradio"
    assert uploads.is_dir() and not [p for p in uploads.rglob("*") if p.is_file()]


def test_a_recordings_audio_is_served_only_with_its_token(server, tmp_path):
    """The page's player link (app.api.recording_url): the signed link plays, a guessed one does not."""
    import urllib.error
    import urllib.request

    from app.api import recording_token

    url, settings = server
    sid = add_summary(settings, "user:alice", "A summary.", name="played.wav")
    audio = settings.audio_dir / "played.wav"
    audio.parent.mkdir(parents=True, exist_ok=True)
    audio.write_bytes(b"RIFF....WAVE")
    with session_scope(settings.db_url) as s:
        recording = s.get(schema.Summary, sid).recording
        recording.stored_path, rid = str(audio), recording.id
    good = f"{url}recording/{rid}?token={recording_token(settings, rid)}"
    with urllib.request.urlopen(good, timeout=10) as answer:
        assert answer.read() == b"RIFF....WAVE" and answer.headers["accept-ranges"] == "bytes"
    for bad in (f"{url}recording/{rid}?token={'0' * 32}", f"{url}recording/{rid}", f"{url}recording/{rid + 99}"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(bad, timeout=10)
        assert refused.value.code == 404
