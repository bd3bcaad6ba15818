"""A fresh install's page, as a new user meets it: an empty data dir, the default models (the packaged
Qwen2.5-Coder-1.5B writes the notes), and a generated meeting that no training run has heard (seed
31337; training meetings use seed 1000). The notes must name the action item's owner and due date."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.conftest import ARTIFACTS, running_app, speechsum_env
from tests.helpers.browser import MODEL_RUN_MS, browsing, upload
from training.data.items import EvalItem
from training.data.meetings import make_meeting
from training.data.speech import speak

pytestmark = [pytest.mark.browser, pytest.mark.real, pytest.mark.slow]
SCREENSHOT = ARTIFACTS / "e2e" / "meeting-notes.png"


def test_a_fresh_install_writes_the_action_item_with_its_owner_and_date(tmp_path):
    meeting = make_meeting(0, seed=31337)
    owner = next(f for f in meeting.facts if f.kind == "owner")
    due = next(f for f in meeting.facts if f.kind == "deadline" and f.subject == owner.subject)
    item = EvalItem(meeting.id, "", "\n".join(f"{who}: {text}" for who, text in meeting.turns), "")
    wav = speak(item, tmp_path / "audio", ("piper",))
    env = speechsum_env(tmp_path)
    del env["SPEECHSUM_LLM_MODEL"]  # the default notes model
    with running_app(env) as url, browsing(url) as page:
        upload(page, wav)
        page.locator("#summarize").click()
        expect(page.locator("#current-up")).to_be_visible(timeout=MODEL_RUN_MS)
        summary = page.locator("#current-summary")
        expect(summary).to_contain_text("Action items")
        action = summary.locator("li", has_text=owner.value.title())
        expect(action.first).to_contain_text(f"due {due.value.title()}")
        expect(action.first).to_contain_text(owner.subject.split()[-1])
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)
