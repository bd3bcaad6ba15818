"""`speechsum simulate`: simulated users close the learning loop, so we can measure that it works.

Each simulated user uploads one generated meeting with known facts (seed LOOP_SEED: no run trains on
it, and the facts benchmark has a generator of its own), spoken with the training voices, through
the same pipeline as the page; gets several sampled notes of the served student; and votes on every
pair of them, A/B, as a user who knows the meeting would: for the notes with more facts right and no
more wrong (or fewer wrong and no fewer right), else a tie. Then one refresh runs as a job (KD on the
new uploads, DPO on the new votes, the gate). The report says which version served before and after,
both versions' held-out ROUGE-L and hallucination, their facts right and wrong on the gate's other
generated meetings (`training.refresh.FACTS_SEED`), the votes used and the minutes:
bench/results/<date>-loop.{json,md,png}.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass, field
from datetime import date
from itertools import combinations
from pathlib import Path

from tqdm import tqdm

from app.library import vote_ab
from app.pipeline import summarize_file
from bench.report import RESULTS, write_report
from models.llm import Decoding
from models.summarizer import Summary
from storage import jobs, registry
from storage.db import ensure_schema, session_scope
from storage.settings import Settings
from training.data.meetings import Meeting, fact_score, make_meeting, spoken
from training.evaluate import stated
from training.refresh import RefreshConfig, refresh

LOOP_SEED = 7070  # the simulated users' meetings (the gate's are training.refresh.FACTS_SEED)


@dataclass
class SimulateConfig:
    votes: int = 300
    candidates: int = 4  # sampled notes per upload; every pair of them is one A/B vote
    temperature: float = 0.8
    seed: int = 0
    refresh: RefreshConfig = field(default_factory=lambda: RefreshConfig(minutes=20.0, force=True))
    out_dir: Path = RESULTS


def facts_vote(left: Summary, right: Summary, meeting: Meeting) -> str:
    """A user who knows the meeting: the notes with more facts right and no more wrong (or fewer wrong
    and no fewer right) win; notes better on one count and worse on the other are a tie."""
    (l_right, l_wrong), (r_right, r_wrong) = (fact_score(stated(s), meeting) for s in (left, right))
    if (l_right, l_wrong) == (r_right, r_wrong):
        return "tie"
    if l_right >= r_right and l_wrong <= r_wrong:
        return "left"
    if r_right >= l_right and r_wrong <= l_wrong:
        return "right"
    return "tie"


def simulated_votes(settings: Settings, cfg: SimulateConfig, progress=None) -> dict:
    """Uploads, sampled notes and A/B votes of the simulated users; returns counts."""
    rng = random.Random(cfg.seed)
    per_item = len(list(combinations(range(cfg.candidates), 2)))
    meetings = [make_meeting(i, LOOP_SEED) for i in range(-(-cfg.votes // per_item))]
    counts = {"uploads": 0, "summaries": 0, "votes": 0, "ties": 0}
    for k, meeting in enumerate(tqdm(meetings, desc="simulated users", unit="user")):
        user, wav = f"sim:user{k:03d}", spoken(meeting, settings.data_dir / "loop-audio")
        decodings = [Decoding(max_new_tokens=settings.summary_max_tokens, do_sample=True,
                              temperature=cfg.temperature, seed=rng.randrange(2**31)) for _ in range(cfg.candidates)]
        results = [summarize_file(settings, wav, query=None, original_name=f"{meeting.id}.wav", uploader=user,
                                  decoding=d, system="student") for d in decodings]
        counts["uploads"] += 1
        counts["summaries"] += len(results)
        for a, b in combinations(results, 2):
            if counts["votes"] >= cfg.votes:
                break
            left, right = (a, b) if rng.random() < 0.5 else (b, a)
            choice = facts_vote(left.summary, right.summary, meeting)
            vote_ab(settings, left.summary_id, right.summary_id, user, choice)
            counts["votes"] += 1
            counts["ties"] += choice == "tie"
        if progress:
            progress((k + 1) / len(meetings), f"simulated user {k + 1} of {len(meetings)}: {counts['votes']} votes")
    return counts


def simulate(settings: Settings, cfg: SimulateConfig, progress=None) -> dict:
    """Votes, then one refresh job; writes the loop report and returns it."""
    ensure_schema(settings.db_url)
    with session_scope(settings.db_url) as session:
        served = registry.served(session, "student")
        if served is None:
            raise registry.RegistryError("no student is served: promote one first (`speechsum models promote`)")
        before = served.name
    started = time.monotonic()
    counts = simulated_votes(settings, cfg, progress)
    vote_minutes = (time.monotonic() - started) / 60
    with session_scope(settings.db_url) as session:
        job_id = jobs.create(session, "refresh", asdict(cfg.refresh), actor="simulate").id
    started = time.monotonic()
    outcome = jobs.run(settings.db_url, job_id, lambda p: refresh(settings, cfg.refresh, p))
    with session_scope(settings.db_url) as session:
        after = registry.served(session, "student").name
        candidate = registry.get(session, outcome["candidate"]) if outcome.get("candidate") else None
        pairs = candidate.metrics.get("vote_pairs") if candidate else None
    scores = outcome.get("scores", {})
    facts = {name: scores[key]["facts"] for name, key in ((before, "served"), (outcome.get("candidate"), "candidate"))
             if "facts" in scores.get(key, {})}
    report = {"date": date.today().isoformat(), "config": json.loads(json.dumps(asdict(cfg), default=str)),
              "served_before": before, "served_after": after, "job": job_id, **counts,
              "vote_pairs_used": pairs, "outcome": outcome.get("outcome", outcome.get("status")),
              "message": outcome.get("message", outcome.get("error", "")), "scores": scores,
              "candidate": outcome.get("candidate"), "uploads_since": outcome.get("uploads"),
              "votes_since": outcome.get("votes"), "minutes": {"votes": round(vote_minutes, 1),
                                                               "refresh": round((time.monotonic() - started) / 60, 1)},
              "facts": facts}
    write(report, cfg.out_dir)
    return report


def markdown(report: dict) -> str:
    scores, facts = report["scores"], report.get("facts", {})

    def row(who: str, name: str | None, key: str) -> str:
        s, f = scores.get(key), facts.get(name)
        if not (s or f):
            return ""
        gate = f"{100 * s['rougeL']:.1f} | {100 * s['hallucination']:.1f}% | {s['words']:.0f}" if s else "– | – | –"
        said = f"{f['right']} / {f['wrong']} of {f['facts']}" if f else "–"
        return f"\n| {who} | {name} | {gate} | {said} |"

    rows = row("served before", report["served_before"], "served") + row("candidate", report["candidate"], "candidate")
    verdict = ""
    before, candidate = facts.get(report["served_before"]), facts.get(report["candidate"])
    if before and candidate:
        better = candidate["right"] > before["right"] and candidate["wrong"] <= before["wrong"]
        verdict = (f"On {candidate['meetings']} other generated meetings the candidate "
                   f"{'states' if better else 'does not state'} more facts right with no more wrong than the "
                   "served version.\n\n")
    return (f"# Learning loop, {report['date']}\n\n{report['uploads']} simulated uploads (generated meetings), "
            f"{report['summaries']} notes, {report['votes']} A/B votes by facts right and wrong "
            f"({report['ties']} ties; {report['vote_pairs_used']} preference pairs used). "
            f"Refresh: **{report['outcome']}**: {report['message']}\n\n"
            f"Served before: {report['served_before']}; after: {report['served_after']}.\n\n"
            f"| | version | held-out ROUGE-L | hallucination | words | facts right / wrong |\n"
            f"|---|---|---|---|---|---|{rows}\n\n{verdict}"
            f"Minutes: votes {report['minutes']['votes']}, refresh {report['minutes']['refresh']} (this 2-core CPU).\n")


def write(report: dict, out_dir: Path) -> Path:
    def draw(plt):
        scores = report["scores"]
        if not scores:
            return None
        fig, axes = plt.subplots(1, 2, figsize=(7, 3))
        labels = ["served before", "candidate"]
        for ax, metric in zip(axes, ("rougeL", "hallucination"), strict=True):
            ax.bar(labels, [100 * scores[k][metric] for k in ("served", "candidate")], color=["grey", "tab:blue"])
            ax.set_title(f"{metric} (%)")
        fig.suptitle(f"refresh after {report['votes']} simulated votes: {report['outcome']}", fontsize=9)
        return fig

    return write_report(out_dir / f"{report['date']}-loop", report, markdown(report), draw)
