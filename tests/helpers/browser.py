"""Driving the page in Debian's Chromium with Playwright."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

CHROMIUM = "/usr/bin/chromium"


# As root in a container, with no network: no sandbox, no GPU, no calls home.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update"]


SPEECH = ("Good morning. We agreed to spend forty thousand dollars on the redesign. "
          "Tom will lead the interviews next Monday. The launch moves to the fifteenth of May.")


MODEL_RUN_MS = 240_000


@contextmanager
def browsing(url: str) -> Iterator[Page]:
    """A fresh headless Chromium (new profile) on `url`; fails if the page reaches beyond this machine."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing (apt-get install chromium); .ci/run installs it")
    outside: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.on("request", lambda r: outside.append(r.url) if not r.url.startswith((url, "data:", "blob:")) else None)
        page.goto(url)
        yield page
        browser.close()
    assert outside == [], f"the page loaded from outside this machine: {outside}"


def upload(page: Page, path: Path) -> None:
    """Chooses a file in the audio box and waits until the upload is done (the player shows)."""
    page.locator("#audio input[type=file]").set_input_files(str(path))
    expect(page.locator("#audio").get_by_role("button", name="Clear")).to_be_visible(timeout=20_000)


def shown_id(page: Page, selector: str) -> int:
    """The summary's number, from its details (behind a toggle, so from the text content)."""
    return int(re.findall(r"summary #(\d+)", page.locator(selector).text_content())[-1])


