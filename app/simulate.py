"""`speechsum simulate`: simulated users close the learning loop, so we can measure that it works.

Each simulated user uploads one spoken training item (training side of the split only) through
the same pipeline as the page, gets several sampled summaries of the served student, and votes on
every pair of them, A/B, for the one closer to the human answer (ROUGE-L; a tie under a small
margin), as a careful user who knows the meeting would. Then one refresh runs as a job (KD on
the new uploads, DPO on the new votes, the held-out gate). The report says which version served
before and after, both versions' held-out ROUGE-L and hallucination, the votes used and the minutes:
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
from storage import jobs, registry
from storage.db import ensure_schema, session_scope
from storage.settings import Settings
from training.data.items import short_items, training_items
from training.data.speech import spoken_wavs
from training.metrics import rouge
from training.refresh import RefreshConfig, refresh


@dataclass
class SimulateConfig:
    votes: int = 300
    candidates: int = 4  # sampled summaries per upload; every pair of them is one A/B vote
    max_words: int = 250  # items of up to ~2 minutes spoken, so 300 votes take minutes, not hours
    tie_margin: float = 0.02  # ROUGE-L difference under which the simulated user says "tie"
    temperature: float = 0.8
    seed: int = 0
    refresh: RefreshConfig = field(default_factory=lambda: RefreshConfig(minutes=20.0, force=True))
    out_dir: Path = RESULTS


def simulated_votes(settings: Settings, cfg: SimulateConfig, progress=None) -> dict:
    """Uploads, sampled summaries and A/B votes of the simulated users; returns counts."""
    rng = random.Random(cfg.seed)
    per_item = len(list(combinations(range(cfg.candidates), 2)))
    items = short_items(training_items(settings.shared_data, cfg.seed), cfg.max_words)
    rng.shuffle(items)
    items = items[: -(-cfg.votes // per_item)]
    wavs = spoken_wavs(items, settings.data_dir / "train-speech", cfg.seed)
    counts = {"uploads": 0, "summaries": 0, "votes": 0, "ties": 0}
    for k, (item, wav) in enumerate(tqdm(list(zip(items, wavs, strict=True)), desc="simulated users", unit="user")):
        user = f"sim:user{k:03d}"
        decodings = [Decoding(max_new_tokens=settings.summary_max_tokens, do_sample=True,
                              temperature=cfg.temperature, seed=rng.randrange(2**31)) for _ in range(cfg.candidates)]
        results = [summarize_file(settings, wav, query=item.query, original_name=f"{item.id}.wav", uploader=user,
                                  decoding=d, system="student") for d in decodings]
        counts["uploads"] += 1
        counts["summaries"] += len(results)
        for a, b in combinations(results, 2):
            if counts["votes"] >= cfg.votes:
                break
            left, right = (a, b) if rng.random() < 0.5 else (b, a)
            r_left, r_right = (rouge(r.summary.text, [item.reference])["rougeL"] for r in (left, right))
            choice = "tie" if abs(r_left - r_right) < cfg.tie_margin else ("left" if r_left > r_right else "right")
            vote_ab(settings, left.summary_id, right.summary_id, user, choice)
            counts["votes"] += 1
            counts["ties"] += choice == "tie"
        if progress:
            progress((k + 1) / len(items), f"simulated user {k + 1} of {len(items)}: {counts['votes']} votes")
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
    report = {"date": date.today().isoformat(), "config": json.loads(json.dumps(asdict(cfg), default=str)),
              "served_before": before, "served_after": after, "job": job_id, **counts,
              "vote_pairs_used": pairs, "outcome": outcome.get("outcome", outcome.get("status")),
              "message": outcome.get("message", outcome.get("error", "")), "scores": outcome.get("scores", {}),
              "candidate": outcome.get("candidate"), "uploads_since": outcome.get("uploads"),
              "votes_since": outcome.get("votes"), "minutes": {"votes": round(vote_minutes, 1),
                                                               "refresh": round((time.monotonic() - started) / 60, 1)}}
    write(report, cfg.out_dir)
    return report


def markdown(report: dict) -> str:
    scores = report["scores"]
    rows = "".join(f"\n| {who} | {name} | {100 * s['rougeL']:.1f} | {100 * s['hallucination']:.1f}% | {s['words']:.0f} |"
                   for who, name, s in (("served before", report["served_before"], scores.get("served")),
                                        ("candidate", report["candidate"], scores.get("candidate"))) if s)
    return (f"# Learning loop, {report['date']}\n\n{report['uploads']} simulated uploads, {report['summaries']} "
            f"summaries, {report['votes']} A/B votes ({report['ties']} ties; {report['vote_pairs_used']} preference "
            f"pairs used). Refresh: **{report['outcome']}**: {report['message']}\n\n"
            f"Served before: {report['served_before']}; after: {report['served_after']}.\n\n"
            f"| | version | ROUGE-L | hallucination | words |\n|---|---|---|---|---|{rows}\n\n"
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
