"""What the admin tab and `speechsum jobs` show and do: jobs, versions, votes, the served line.

Plain functions over the SQL store, so the page, the CLI and the tests read one truth. Who is an
admin: a logged-in user named in `SPEECHSUM_ADMINS`; with no login configured, nobody, unless
`SPEECHSUM_LOCAL_ADMIN` allows a browser on this machine.
"""

from __future__ import annotations

from collections import Counter, defaultdict

from sqlalchemy import select

from storage import jobs, registry, schema
from storage.db import ensure_schema, session_scope
from storage.settings import Settings

LOCAL_HOSTS = {"127.0.0.1", "::1", "localhost"}


class NotAdmin(PermissionError):
    """An admin action asked for by someone who is not an admin; the message is meant for them."""


def is_admin(settings: Settings, username: str | None, client_host: str | None) -> bool:
    if username:
        return username in settings.admin_names
    return not settings.logins and settings.local_admin and client_host in LOCAL_HOSTS


def require_admin(settings: Settings, username: str | None, client_host: str | None) -> str:
    """The admin's name for the records, or NotAdmin."""
    if not is_admin(settings, username, client_host):
        raise NotAdmin("this is for admins only (SPEECHSUM_ADMINS names them)")
    return username or "local admin"


def job_dict(job: schema.Job) -> dict:
    return {"id": job.id, "kind": job.kind, "status": job.status, "progress": job.progress, "message": job.message,
            "log": job.log, "actor": job.actor, "params": job.params, "result": job.result,
            "version_id": job.version_id, "created_at": job.created_at.isoformat(),
            "started_at": job.started_at.isoformat() if job.started_at else "",
            "finished_at": job.finished_at.isoformat() if job.finished_at else ""}


def list_jobs(settings: Settings, limit: int = 20) -> list[dict]:
    ensure_schema(settings.db_url)
    with session_scope(settings.db_url) as session:
        return [job_dict(j) for j in jobs.listing(session, limit)]


def start_job(settings: Settings, kind: str, params: dict | None = None, actor: str = "") -> int:
    from app.worker import submit

    return submit(settings, kind, params or {}, actor)


def cancel_job(settings: Settings, job_id: int) -> str:
    ensure_schema(settings.db_url)
    with session_scope(settings.db_url) as session:
        job = jobs.cancel(session, job_id)
        return f"job {job.id}: " + ("cancelled" if job.status == "cancelled" else "stops at its next step")


def versions_table(settings: Settings) -> list[dict]:
    """Every version with its parent and the scores the gate measured (newest first)."""
    from app.versions import list_versions  # the models' imports, only for the admin tab

    rows = []
    for v in reversed(list_versions(settings)):
        held, gate = v["metrics"].get("held_out", {}), v["metrics"].get("gate", {})
        rows.append({"name": v["name"], "kind": v["kind"], "stage": v["stage"], "status": v["status"],
                     "parent": v["parent"] or "", "rougeL": held.get("rougeL"),
                     "hallucination": held.get("hallucination"), "gate": gate.get("reason", ""),
                     "created_at": v["created_at"]})
    return rows


def served_line(settings: Settings) -> list[dict]:
    """The student versions in the order they were served, with their held-out scores: the plot's points."""
    ensure_schema(settings.db_url)
    with session_scope(settings.db_url) as session:
        points = []
        for promotion in registry.history(session, "student"):
            version = session.get(schema.ModelVersion, promotion.version_id)
            held = version.metrics.get("held_out", {})
            points.append({"at": promotion.created_at.isoformat(), "version": version.name,
                           "action": promotion.action, "rougeL": held.get("rougeL"),
                           "hallucination": held.get("hallucination")})
        return points


def vote_stats(settings: Settings) -> dict:
    """Votes per day, how often two voters of the same A/B pair agree, and the share of "both bad"."""
    ensure_schema(settings.db_url)
    with session_scope(settings.db_url) as session:
        thumbs = session.scalars(select(schema.ThumbVote)).all()
        ab = session.scalars(select(schema.ABVote)).all()
        per_day: dict[str, Counter] = defaultdict(Counter)
        for vote in thumbs:
            per_day[vote.updated_at.date().isoformat()]["thumbs"] += 1
        by_pair = defaultdict(list)
        for vote in ab:
            per_day[vote.updated_at.date().isoformat()]["ab"] += 1
            winner = {"left": vote.left_summary_id, "right": vote.right_summary_id}.get(vote.choice, vote.choice)
            by_pair[vote.pair].append(winner)
        shared = [choices for choices in by_pair.values() if len(choices) >= 2]
        agreeing = sum(len(set(choices)) == 1 for choices in shared)
        return {"thumbs": len(thumbs), "ab": len(ab),
                "per_day": [{"day": day, "thumbs": c["thumbs"], "ab": c["ab"]} for day, c in sorted(per_day.items())],
                "ab_pairs_with_several_voters": len(shared),
                "ab_agreement": agreeing / len(shared) if shared else None,
                "both_bad_share": sum(v.choice == "both_bad" for v in ab) / len(ab) if ab else None}
