"""The web page (Gradio Blocks): summarize a recording, compare two summaries, look back at history.

A thin shell over app.pipeline. Every vote is tied to `api.owner`: the logged-in user when login
is on (SPEECHSUM_USERS), else a random id this browser keeps in its local storage.
"""

from __future__ import annotations

import html
import os
import uuid
from dataclasses import dataclass

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402  (the analytics switch must be set before the import)

from app import admin_tab  # noqa: E402
from app.api import (  # noqa: E402
    audio_path,
    export_file,
    model_slots,
    original_name,
    owner,
    recording_url,
    register,
    shown_to_user,
    systems_of,
    upload_used,
    user_error,
    web_secret,
)
from app.exports import FORMATS  # noqa: E402
from app.library import (  # noqa: E402
    delete_recording,
    history,
    interrupted,
    my_recordings,
    my_thumb,
    recording_file,
    rename_speaker,
    summarize_again,
    vote_ab,
    vote_thumb,
)
from app.pipeline import Result, load_result  # noqa: E402
from app.versions import student_served  # noqa: E402
from app.worker import compare_upload, stop_summaries, summarize_upload  # noqa: E402
from models.summarizer import clock  # noqa: E402
from storage.settings import Settings  # noqa: E402

IN_SUMMARIZE = "The recording in the Summarize tab"
CASCADE, STUDENT = ("Cascade (transcript → LLM)", "cascade"), ("Student (hears the audio)", "student")
SAMPLES, STUDENT_VS_CASCADE = ("Two samples of the cascade", "samples"), ("Student vs cascade", "student-vs-cascade")
AB_BUTTONS = (("left", "← Left is better"), ("right", "Right is better →"), ("tie", "Tie"), ("both_bad", "Both are bad"))
THUMB_NOTE = {1: "You rated this summary **good**. You can change your vote.",
              -1: "You rated this summary **bad**. You can change your vote."}


def transcript_text(result: Result) -> str:
    return "\n".join(f"[{clock(s.start)} – {clock(s.end)}] {s.said}" for s in result.named_transcript.segments)


SYSTEM_NAMES = {"cascade": "the transcript read by a text model", "student": "the speech model, hearing the audio"}
NO_STUDENT = ("*The student (a speech model that hears the audio) appears here once one is trained and served: "
              "an admin starts \"Train a student\" in the Admin tab (or runs `speechsum train all --serve`).*")
CSS = "button:disabled, button[disabled] { opacity: 0.45; cursor: not-allowed; filter: grayscale(1); }"


def details(result: Result) -> str:
    """Who made the summary, for those who want to know: behind a toggle, in plain words."""
    s = result.summary
    made_by = SYSTEM_NAMES.get(s.system, s.system)
    return (f"<details><summary>Details</summary>Made by {made_by} ({s.model_version}) in {s.latency_s:.1f} s; "
            f"summary #{result.summary_id}.</details>")


def seek_link(seconds: float) -> str:
    """A time in the notes and key points that moves the panel's player there (SEEK_JS)."""
    return f"[[{clock(seconds)}]](#t={seconds:.1f})"


def summary_markdown(result: Result, key_points: bool = True) -> str:
    s = result.summary
    question = f"**Question:** {s.query}\n\n" if s.query else ""
    # The A/B panels compare what two models wrote (key_points=False) and have no player: plain times.
    body = s.markdown(result.speakers, stamp=seek_link if key_points else None, key_points=key_points)
    return f"{question}{body}\n\n{details(result)}"


def player_html(settings: Settings, result: Result) -> str:
    """The recording's own player, fed by the web server from the store (app.web), so it plays
    after Gradio's temporary copy of the upload is gone, and in History too."""
    return (f'<audio controls preload="metadata" style="width:100%" '
            f'src="{html.escape(recording_url(settings, result.recording_id))}"></audio>')


# A click on a time link ("#t=35.0") in a summary moves the player of the same panel there and plays.
SEEK_JS = """<script>
document.addEventListener("click", (event) => {
  const link = event.target.closest('a[href^="#t="]');
  const panel = link && link.closest('[id$="-summary"]');
  if (!panel) return;
  event.preventDefault();
  event.stopPropagation();
  const player = document.querySelector("#" + panel.id.replace(/-summary$/, "-player") + " audio");
  if (!player) return;
  player.currentTime = parseFloat(link.getAttribute("href").slice(3));
  player.play().catch(() => {});
}, true);
</script>"""


@dataclass
class SummaryPanel:
    """A summary with its transcript, thumbs and downloads; the Summarize and History tabs each have one."""

    settings: Settings
    summary_id: gr.State
    summary: gr.Markdown
    player: gr.HTML
    transcript: gr.Textbox
    actions: gr.Column
    up: gr.Button
    down: gr.Button
    vote_note: gr.Markdown
    downloads: list[gr.DownloadButton]
    speakers: gr.Row
    speaker: gr.Dropdown
    speaker_name: gr.Textbox
    rename: gr.Button

    @classmethod
    def build(cls, settings: Settings, name: str, placeholder: str) -> SummaryPanel:
        summary_id = gr.State(None)
        summary = gr.Markdown(f"*{placeholder}*", elem_id=f"{name}-summary")
        player = gr.HTML(elem_id=f"{name}-player")
        with gr.Column(visible=False) as actions:
            with gr.Row():
                up = gr.Button("Good summary", size="sm", elem_id=f"{name}-up")
                down = gr.Button("Bad summary", size="sm", elem_id=f"{name}-down")
            vote_note = gr.Markdown(elem_id=f"{name}-vote-note")
            with gr.Row():
                downloads = [gr.DownloadButton(fmt.upper(), size="sm", elem_id=f"{name}-download-{fmt}") for fmt in FORMATS]
        transcript = gr.Textbox(label="Transcript", lines=12, max_lines=30, elem_id=f"{name}-transcript")
        with gr.Row(visible=False, equal_height=True) as speakers:
            speaker = gr.Dropdown(label="Speaker", choices=[], elem_id=f"{name}-speaker", scale=2)
            speaker_name = gr.Textbox(label="Their name", placeholder="Priya", elem_id=f"{name}-speaker-name", scale=2)
            rename = gr.Button("Rename", size="sm", elem_id=f"{name}-rename", scale=1)
        return cls(settings, summary_id, summary, player, transcript, actions, up, down, vote_note, downloads,
                   speakers, speaker, speaker_name, rename)

    @property
    def outputs(self) -> list:
        return [self.summary_id, self.summary, self.player, self.transcript, self.actions, self.vote_note,
                *self.downloads, self.speakers, self.speaker]

    def values(self, result: Result, thumb: int | None) -> list:
        return [result.summary_id, summary_markdown(result), player_html(self.settings, result),
                transcript_text(result), gr.Column(visible=True), THUMB_NOTE.get(thumb, ""), *self.files(result),
                *self.speaker_values(result)]

    @staticmethod
    def files(result: Result) -> list:
        return [gr.DownloadButton(value=export_file(result, fmt)) for fmt in FORMATS]

    @staticmethod
    def speaker_values(result: Result) -> list:
        """The rename row: shown when diarization found speakers, each listed with the name given to it."""
        choices = [(label if result.speaker(label) == label else f"{label} ({result.speaker(label)})", label)
                   for label in result.labels]
        return [gr.Row(visible=bool(choices)), gr.Dropdown(choices=choices, value=choices[0][1] if choices else None)]

    def wire_rename(self, settings: Settings, browser: gr.BrowserState) -> None:
        def rename(summary_id: int | None, label: str | None, name: str, browser_id: str | None,
                   request: gr.Request):
            if summary_id is None or not label:
                raise user_error("Pick a speaker of a summary first.")
            with shown_to_user():
                result = rename_speaker(settings, summary_id, owner(request, browser_id), label, name)
            return [summary_markdown(result), transcript_text(result), *self.files(result),
                    *self.speaker_values(result), ""]

        self.rename.click(rename, [self.summary_id, self.speaker, self.speaker_name, browser],
                          [self.summary, self.transcript, *self.downloads, self.speakers, self.speaker,
                           self.speaker_name], api_visibility="private")

    def wire_votes(self, settings: Settings, browser: gr.BrowserState) -> None:
        def vote(value: int):
            def handler(summary_id: int | None, browser_id: str | None, request: gr.Request) -> str:
                if summary_id is None:
                    raise user_error("There is no summary to rate yet.")
                with shown_to_user():
                    vote_thumb(settings, summary_id, owner(request, browser_id), value)
                return THUMB_NOTE[value]
            return handler

        for button, value in ((self.up, 1), (self.down, -1)):
            button.click(vote(value), [self.summary_id, browser], [self.vote_note], api_visibility="private")


PRIVATE = dict(api_visibility="private")  # the page's own events; the API has named endpoints (app/api.py)


def summarize_tab(settings: Settings, browser: gr.BrowserState) -> tuple[gr.Audio, gr.Radio, gr.Markdown]:
    """Upload or record, an optional question, the system; the summary panel. Returns what other tabs read."""
    with gr.Tab("Summarize", id="summarize"):
        with gr.Row():
            with gr.Column(scale=2):
                audio = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Recording", elem_id="audio")
                query = gr.Textbox(label="Focus question (optional)", elem_id="query",
                                   placeholder="What did we decide about the budget?")
                system = gr.Radio([CASCADE], value="cascade", label="System", elem_id="system")
                no_student = gr.Markdown(NO_STUDENT, elem_id="no-student")
                with gr.Row():
                    go = gr.Button("Summarize", variant="primary", elem_id="summarize", scale=3)
                    stop = gr.Button("Stop", variant="stop", elem_id="stop-summary", visible=settings.has_workers)
            with gr.Column(scale=3):
                current = SummaryPanel.build(settings, "current", "The summary appears here.")

    def summarize(audio_in, question: str, chosen: str, browser_id: str | None, request: gr.Request,
                  progress=gr.Progress()):
        who, path, follow = owner(request, browser_id), audio_path(audio_in), lambda f, msg: progress(f, desc=msg)
        with shown_to_user(), upload_used(settings, path, who) as stored:
            result = summarize_upload(settings, path, follow, query=question or None, system=chosen, uploader=who,
                                      original_name=original_name(audio_in))
            stored(result)
        return current.values(result, None)

    def stop_mine(browser_id: str | None, request: gr.Request) -> None:
        gr.Info(stop_summaries(settings, owner(request, browser_id)))

    go.click(summarize, [audio, query, system, browser], current.outputs, **model_slots(settings),
             **PRIVATE)
    stop.click(stop_mine, [browser], None, **PRIVATE)
    current.wire_votes(settings, browser)
    current.wire_rename(settings, browser)
    return audio, system, no_student


def compare_tab(settings: Settings, browser: gr.BrowserState, audio: gr.Audio) -> gr.Radio:
    """Two candidates of one recording in random order, and the four A/B buttons. Returns the pair-kind radio."""
    with gr.Tab("Compare (A/B)", id="compare") as tab:
        gr.Markdown("Two candidate summaries of one of your recordings, in random order. "
                    "Which one is better? Your vote trains the next model.")
        with gr.Row():
            source = gr.Dropdown([(IN_SUMMARIZE, 0)], value=0, label="Recording", elem_id="compare-recording", scale=2)
            question_box = gr.Textbox(label="Focus question (optional)", elem_id="compare-query", scale=2)
        with gr.Row():
            pair_kind = gr.Radio([SAMPLES], value="samples", label="Candidates", elem_id="pair-kind", scale=2)
            make_pair = gr.Button("Make two candidates", variant="primary", elem_id="make-pair", scale=1)
        comparing = gr.Markdown(elem_id="comparing")
        pair = gr.State(None)
        with gr.Row():
            left = gr.Markdown(elem_id="candidate-left", container=True)
            right = gr.Markdown(elem_id="candidate-right", container=True)
        with gr.Row():
            ab_buttons = [gr.Button(text, interactive=False, elem_id=f"vote-{choice}") for choice, text in AB_BUTTONS]
        ab_note = gr.Markdown(elem_id="ab-note")

    def candidates(audio_in, recording_id: int | None, question: str, kind: str, browser_id: str | None,
                   request: gr.Request, progress=gr.Progress()):
        who = owner(request, browser_id)
        with shown_to_user():
            if recording_id:
                path, name = recording_file(settings, int(recording_id), who)
            else:
                path, name = audio_path(audio_in), original_name(audio_in)
        with shown_to_user(), upload_used(settings, path, who) as stored:
            a, b = compare_upload(settings, path, lambda f, msg: progress(f, desc=msg), query=question or None,
                                  original_name=name, systems=systems_of(kind), uploader=who)
            stored(a)
        enabled = [gr.Button(interactive=True) for _ in AB_BUTTONS]
        asked = f" · question: *{question}*" if question else ""
        return ((a.summary_id, b.summary_id), f"Comparing **{name}**{asked}",
                summary_markdown(a, key_points=False), summary_markdown(b, key_points=False), "", *enabled)

    def offer_recordings(browser_id: str | None, request: gr.Request):
        mine = [(label, rid) for rid, label in my_recordings(settings, owner(request, browser_id))]
        return gr.Dropdown(choices=[(IN_SUMMARIZE, 0), *mine])

    def ab_vote(choice: str):
        def handler(shown: tuple[int, int] | None, browser_id: str | None, request: gr.Request):
            if not shown:
                raise user_error("Make two candidates first.")
            with shown_to_user():
                vote_ab(settings, shown[0], shown[1], owner(request, browser_id), choice)
            label = dict(AB_BUTTONS)[choice]
            return f"Thank you: your vote ({label}) is recorded.", *[gr.Button(interactive=False) for _ in AB_BUTTONS]
        return handler

    tab.select(offer_recordings, [browser], [source], **PRIVATE)
    make_pair.click(candidates, [audio, source, question_box, pair_kind, browser],
                    [pair, comparing, left, right, ab_note, *ab_buttons],
                    **model_slots(settings), **PRIVATE)
    for button, (choice, _) in zip(ab_buttons, AB_BUTTONS, strict=True):
        button.click(ab_vote(choice), [pair, browser], [ab_note, *ab_buttons], **PRIVATE)
    return pair_kind


def history_tab(settings: Settings, browser: gr.BrowserState) -> None:
    """Your summaries, newest first and searchable; one picked is shown again, with its votes."""
    with gr.Tab("History", id="history") as tab:
        with gr.Row():
            search = gr.Textbox(label="Search your summaries", scale=4, elem_id="search",
                                placeholder="a word from the file name, question, summary or transcript")
            search_button = gr.Button("Search", scale=1, elem_id="search-button")
        listing = gr.Radio(label="Your summaries, newest first", choices=[], elem_id="listing")
        with gr.Row(visible=False) as unfinished:
            stopped = gr.Radio(label="Recordings without a summary (one was interrupted)", choices=[], scale=4,
                               elem_id="interrupted")
            again = gr.Button("Summarize again", scale=1, elem_id="summarize-again")
        past = SummaryPanel.build(settings, "past", "Pick a summary above to see it again.")
        remove = gr.Button("Delete this recording and all made from it", variant="stop", elem_id="delete-recording")
        removed = gr.Markdown(elem_id="deleted")

    def find(text: str, browser_id: str | None, request: gr.Request):
        who = owner(request, browser_id)
        items, left = history(settings, who, text), interrupted(settings, who)
        return (gr.Radio(choices=[(item.label(), item.summary_id) for item in items], value=None),
                gr.Radio(choices=left, value=None), gr.Row(visible=bool(left)))

    def resume(recording_id: int | None, text: str, browser_id: str | None, request: gr.Request,
               progress=gr.Progress()):
        who = owner(request, browser_id)
        if not recording_id:
            raise user_error("Pick a recording first.")
        with shown_to_user():
            result = summarize_again(settings, recording_id, who, lambda f, msg: progress(f, desc=msg))
        return *past.values(result, None), *find(text, browser_id, request)

    def open_past(summary_id: int | None, browser_id: str | None, request: gr.Request):
        who = owner(request, browser_id)
        with shown_to_user():
            result = load_result(settings, summary_id, who)
        return past.values(result, my_thumb(settings, summary_id, who))

    def delete(summary_id: int | None, text: str, browser_id: str | None, request: gr.Request):
        who = owner(request, browser_id)
        if not summary_id:
            raise user_error("Pick a summary first.")
        with shown_to_user():
            said = delete_recording(settings, load_result(settings, summary_id, who).recording_id, who)
        return said + ".", *find(text, browser_id, request)

    lists = [listing, stopped, unfinished]
    for trigger in (search.submit, search_button.click, tab.select):
        trigger(find, [search, browser], lists, **PRIVATE)
    remove.click(delete, [listing, search, browser], [removed, *lists], **PRIVATE)
    again.click(resume, [stopped, search, browser], [*past.outputs, *lists], **model_slots(settings), **PRIVATE)
    listing.input(open_past, [listing, browser], past.outputs, **PRIVATE)
    past.wire_votes(settings, browser)
    past.wire_rename(settings, browser)


def build(settings: Settings) -> gr.Blocks:
    # Gradio keeps its own copy of every upload; recordings are stored in the data dir, so a day is plenty.
    with gr.Blocks(title="speechsum", analytics_enabled=False, delete_cache=(3600, 24 * 3600)) as page:
        register(settings)  # first: the API's names (/summarize, ...) before the page's own handlers of those names
        browser = gr.BrowserState(None, storage_key="speechsum-browser-id", secret=web_secret(settings))
        gr.Markdown("# speechsum\nTurn a recording into a transcript and a summary, on this machine.")
        with gr.Tabs():
            audio, system, no_student = summarize_tab(settings, browser)
            pair_kind = compare_tab(settings, browser, audio)
            history_tab(settings, browser)
            admin_tab.build(settings, page)

        def new_browser_id(browser_id: str | None) -> str:
            return browser_id or uuid.uuid4().hex

        def offer_systems():
            """The student appears only when one is served; until then the page says how to get one."""
            served = student_served(settings)
            systems, kinds = ([CASCADE, STUDENT], [SAMPLES, STUDENT_VS_CASCADE]) if served else ([CASCADE], [SAMPLES])
            return gr.Radio(choices=systems), gr.Markdown(visible=not served), gr.Radio(choices=kinds)

        page.load(new_browser_id, [browser], [browser], **PRIVATE)
        page.load(offer_systems, None, [system, no_student, pair_kind], **PRIVATE)
    return page
