"""The admin tab: jobs with progress and logs, "refresh now", "train a student" and cancel, the versions with
promote / rollback, the served line's scores, vote statistics. Shown only to admins (app/admin.py
says who); every handler checks again on the server, so a hidden tab is not the only guard.
"""

from __future__ import annotations

import html

import gradio as gr
import pandas as pd

from app import admin
from app.api import shown_to_user, user_error
from app.versions import promote_version, rollback_version
from storage.jobs import JobError
from storage.settings import Settings

TRAIN_ALL_NOTE = ("Training every stage queued as job {number} (about two hours on two cores; its progress shows "
                  "below). The student serves only if it passes the gate; started again, the job goes on where it "
                  "stopped.")
VERSION_COLUMNS = ["name", "kind", "stage", "status", "parent", "ROUGE-L", "hallucination %", "gate"]


def _who(request: gr.Request | None) -> tuple[str | None, str | None]:
    client = getattr(request, "client", None)
    return getattr(request, "username", None), getattr(client, "host", None)


def _admin_or_error(settings: Settings, request: gr.Request | None) -> str:
    """The admin's name, or the error the page shows to anyone else."""
    try:
        return admin.require_admin(settings, *_who(request))
    except admin.NotAdmin as exc:
        raise user_error(str(exc)) from exc


def jobs_html(rows: list[dict]) -> str:
    """Jobs as a table with a progress bar each, the log tail behind a toggle."""
    if not rows:
        return "<p>No jobs yet.</p>"
    lines = ["<table class='speechsum-jobs'><tr><th>#</th><th>kind</th><th>status</th><th>progress</th>"
             "<th>message</th><th>started by</th></tr>"]
    for job in rows:
        pct = round(100 * job["progress"])
        log = f"<details><summary>log</summary><pre>{html.escape(job['log'][-3000:])}</pre></details>"
        lines.append(
            f"<tr id='job-{job['id']}' data-status='{job['status']}'><td>{job['id']}</td><td>{job['kind']}</td>"
            f"<td>{job['status']}</td><td><progress max='100' value='{pct}'></progress> {pct}%</td>"
            f"<td>{html.escape(job['message'][:200])}{log}</td><td>{html.escape(job['actor'])}</td></tr>")
    return "\n".join(lines + ["</table>"])


def versions_frame(rows: list[dict]) -> pd.DataFrame:
    pct = lambda x: None if x is None else round(100 * x, 1)  # noqa: E731
    return pd.DataFrame([[r["name"], r["kind"], r["stage"], r["status"], r["parent"], pct(r["rougeL"]),
                          pct(r["hallucination"]), r["gate"]] for r in rows], columns=VERSION_COLUMNS)


def served_frame(points: list[dict]) -> pd.DataFrame:
    rows = []
    for i, p in enumerate(points):
        for metric in ("rougeL", "hallucination"):
            if p[metric] is not None:
                rows.append({"served": i + 1, "metric": metric, "value": round(100 * p[metric], 1),
                             "version": p["version"]})
    return pd.DataFrame(rows, columns=["served", "metric", "value", "version"])


def stats_markdown(stats: dict) -> str:
    agreement = "n/a" if stats["ab_agreement"] is None else f"{100 * stats['ab_agreement']:.0f}%"
    both_bad = "n/a" if stats["both_bad_share"] is None else f"{100 * stats['both_bad_share']:.0f}%"
    days = "".join(f"\n| {d['day']} | {d['thumbs']} | {d['ab']} |" for d in stats["per_day"][-14:])
    return (f"**Votes:** {stats['thumbs']} thumbs, {stats['ab']} A/B. **A/B agreement** (pairs with several "
            f"voters: {stats['ab_pairs_with_several_voters']}): {agreement}. **Both bad:** {both_bad}.\n\n"
            f"| day | thumbs | A/B |\n|---|---|---|{days}")


def build(settings: Settings, page: gr.Blocks) -> gr.Tab:
    """Adds the tab, hidden, inside the page's `gr.Tabs`; the page's load shows it to admins only."""
    with gr.Tab("Admin", id="admin", visible=False) as tab:
        timer = gr.Timer(2.0, active=False)
        gr.Markdown("### Jobs")
        with gr.Row():
            refresh_now = gr.Button("Run a refresh now", variant="primary", elem_id="admin-refresh")
            train_student = gr.Button("Train a student (every stage)", elem_id="admin-train-all")
            job_id = gr.Number(label="Job #", precision=0, elem_id="admin-job-id")
            cancel = gr.Button("Cancel job", elem_id="admin-cancel")
        note = gr.Markdown(elem_id="admin-note")
        jobs = gr.HTML(elem_id="admin-jobs")
        gr.Markdown("### Versions")
        versions = gr.Dataframe(headers=VERSION_COLUMNS, interactive=False, elem_id="admin-versions", wrap=True)
        with gr.Row():
            version = gr.Textbox(label="Version", placeholder="dpo-20261126-...", elem_id="admin-version")
            promote = gr.Button("Promote", elem_id="admin-promote")
            rollback = gr.Button("Roll back the student", elem_id="admin-rollback")
        served = gr.LinePlot(x="served", y="value", color="metric", title="Served students on the held-out items (%)",
                             elem_id="admin-plot")
        gr.Markdown("### Votes")
        stats = gr.Markdown(elem_id="admin-stats")

    def guard(request: gr.Request | None) -> str:
        return _admin_or_error(settings, request)

    def show(request: gr.Request):
        allowed = admin.is_admin(settings, *_who(request))
        return gr.Tab(visible=allowed), gr.Timer(active=allowed)

    def tick(request: gr.Request):
        guard(request)
        return (jobs_html(admin.list_jobs(settings)), versions_frame(admin.versions_table(settings)),
                served_frame(admin.served_line(settings)), stats_markdown(admin.vote_stats(settings)))

    def queue(request: gr.Request, kind: str, params: dict, note: str) -> str:
        actor = guard(request)
        with shown_to_user():
            try:
                return note.format(number=admin.start_job(settings, kind, params, actor=actor))
            except JobError as exc:
                raise user_error(str(exc)) from exc

    def start(request: gr.Request) -> str:
        return queue(request, "refresh", {"force": True}, "Refresh queued as job {number}.")

    def train_everything(request: gr.Request) -> str:
        return queue(request, "train_all", {}, TRAIN_ALL_NOTE)

    def stop(number: float | None, request: gr.Request) -> str:
        guard(request)
        if not number:
            raise user_error("Enter the number of the job to cancel.")
        try:
            return admin.cancel_job(settings, int(number))
        except JobError as exc:
            raise user_error(str(exc)) from exc

    def serve_version(name: str, request: gr.Request) -> str:
        actor = guard(request)
        with shown_to_user():
            return promote_version(settings, name.strip(), reason="from the admin tab", actor=actor)

    def roll_back(request: gr.Request) -> str:
        actor = guard(request)
        with shown_to_user():
            return rollback_version(settings, "student", reason="from the admin tab", actor=actor)

    private = dict(api_visibility="private")
    outputs = [jobs, versions, served, stats]
    page.load(show, None, [tab, timer], **private)
    timer.tick(tick, None, outputs, **private)
    tab.select(tick, None, outputs, **private)
    refresh_now.click(start, None, [note], **private).then(tick, None, outputs, **private)
    train_student.click(train_everything, None, [note], **private).then(tick, None, outputs, **private)
    cancel.click(stop, [job_id], [note], **private).then(tick, None, outputs, **private)
    promote.click(serve_version, [version], [note], **private).then(tick, None, outputs, **private)
    rollback.click(roll_back, None, [note], **private).then(tick, None, outputs, **private)
    return tab
