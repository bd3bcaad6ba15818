"""One turn of the learning loop: new votes and uploads -> KD and DPO from the served student -> the gate.

1. Count what came in since the served student was trained: votes cast or changed, recordings
   uploaded. Below both thresholds there is nothing to learn from yet (unless forced: "run now").
2. KD on the new uploads (the teacher reads their stored transcripts), then DPO on the pairs the new
   votes give plus automatic pairs, each from the one before, starting at the served student.
3. The gate: the candidate and the served version summarize the same fixed held-out items, and write
   notes for the same generated meetings with known facts (seed FACTS_SEED, which no run trains on);
   the candidate is promoted only if its ROUGE-L is within `margin` points of the served one's, its
   hallucination rate is not higher, and it states no fewer facts right and no more wrong. Otherwise
   it stays a candidate and the reason is recorded on it.
   (`train all` passes its last version through the same gate; where no student is served yet, the
   candidate must beat the lead baseline instead.)
The served version changes only at the very end, in one transaction: a refresh that crashes or is
cancelled midway leaves serving as it was.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from models.progress import scaled
from storage import feedback, registry, schema
from storage.db import ensure_schema, session_scope
from storage.settings import Settings
from training.config import Checked, configure, option
from training.data.items import EvalItem, load_items, split

FACTS_SEED = 7171  # the gate's generated meetings: not the training set's (1000), the loop's or the benchmark's


@dataclass
class RefreshConfig(Checked):
    min_votes: int = option(20, "new votes needed before a refresh trains", ge=0)
    min_uploads: int = option(10, "new uploads needed before a refresh trains", ge=0)
    minutes: float = option(30.0, "training budget in minutes, KD and DPO together", gt=0)
    eval_items: int = option(20, "the gate's fixed held-out items (the first N of the split)", ge=1)
    margin: float = option(0.0, "ROUGE-L points the candidate may lose and still be promoted", ge=0)
    facts_meetings: int = option(12, "generated meetings (seed FACTS_SEED) whose facts the gate checks: the "
                                     "candidate must state no fewer right and no more wrong (0: no facts check)", ge=0)
    auto_items: int = option(20, "training items sampled for automatic DPO pairs (0: votes only)", ge=0)
    auto_meetings: int = option(8, "generated meetings sampled for automatic DPO pairs, paired by their known "
                                   "facts as the chain's are (0: none)", ge=0)
    epochs: int = option(3, "passes over the new data, within the time budget", ge=1)
    force: bool = option(False, "train below the thresholds too ('run now')")
    seed: int = option(0, "seed of the split and the sampling")

    @classmethod
    def from_settings(cls, settings: Settings, **overrides) -> RefreshConfig:
        """The settings' thresholds and budget, with a job's parameters on top (an unknown one is refused)."""
        return configure(cls(min_votes=settings.refresh_min_votes, min_uploads=settings.refresh_min_uploads,
                             minutes=settings.refresh_minutes, eval_items=settings.refresh_eval_items,
                             margin=settings.refresh_margin, facts_meetings=settings.refresh_facts_meetings),
                         overrides)


def gate_items(settings: Settings, cfg: RefreshConfig) -> tuple[list[EvalItem], list]:
    """The gate's items (the held-out side of the split by meeting, always the same first N) and their audio."""
    from training.data.speech import eval_wavs

    items = split(load_items(settings.shared_data / "qmsum_dev.jsonl"), cfg.seed)["held_out"][: cfg.eval_items]
    if not items:
        raise ValueError(f"no held-out items in {settings.shared_data}: the gate cannot evaluate")
    return items, eval_wavs(items, settings.data_dir)


def gate_key(items: list[EvalItem]) -> str:
    """Names the gate's item set, so a version's cached scores are reused only on the same items."""
    return f"{len(items)}:{items[0].id}:{items[-1].id}"


def cached_on_version(settings: Settings, name: str, field: str, key: str, compute) -> dict:
    """`compute()`'s scores, kept under `field` of the version's metrics with `key` naming what they
    were measured on, so a version is scored once per item set, not once per gate."""
    with session_scope(settings.db_url) as session:
        cached = registry.get(session, name).metrics.get(field, {})
    if cached.get("key") == key:
        return cached
    scores = {"key": key, **compute()}
    with session_scope(settings.db_url) as session:
        version = registry.get(session, name)
        version.metrics = dict(version.metrics) | {field: scores}
    return scores


def held_out_scores(settings: Settings, name: str, items: list[EvalItem], audio: list, progress=None) -> dict:
    """The version's ROUGE-L and hallucination rate on the gate's items, cached on its registry row."""
    from training.evaluate import summarize_items

    def compute() -> dict:
        row = summarize_items(settings, f"student:{name}", items, audio, progress).row()
        return {"items": len(items), "rougeL": round(row["rougeL"], 4),
                "hallucination": round(row["hallucination"], 4), "words": round(row["words"], 1)}

    return cached_on_version(settings, name, "held_out", gate_key(items), compute)


def facts_scores(settings: Settings, name: str, meetings: int, progress=None) -> dict:
    """The version's greedy notes on the first `meetings` generated meetings of FACTS_SEED, spoken and
    heard as served: facts stated right and wrong, summed; cached on its registry row."""
    from models.llm import Decoding
    from models.serving import load_diarizer, load_recognizer, load_student_summarizer
    from training.data.meetings import fact_score, make_meeting, spoken
    from training.evaluate import hear, stated

    def compute() -> dict:
        summarizer, recognizer, diarizer = (load_student_summarizer(settings, name), load_recognizer(settings),
                                            load_diarizer(settings))
        scores = {"meetings": meetings, "facts": 0, "right": 0, "wrong": 0}
        for k in range(meetings):
            meeting = make_meeting(k, FACTS_SEED)
            samples, transcript = hear(recognizer, diarizer, spoken(meeting, settings.data_dir / "loop-audio"))
            summary = summarizer.summarize(samples, transcript, None,
                                           Decoding(max_new_tokens=settings.summary_max_tokens))
            right, wrong = fact_score(stated(summary), meeting)
            scores |= {"facts": scores["facts"] + len(meeting.facts), "right": scores["right"] + right,
                       "wrong": scores["wrong"] + wrong}
            if progress:
                progress((k + 1) / meetings, f"facts of {name}: meeting {k + 1} of {meetings}")
        return scores

    return cached_on_version(settings, name, "facts", f"{FACTS_SEED}:{meetings}", compute)


def decide(candidate: dict, served: dict, margin: float) -> tuple[bool, str]:
    """Whether the candidate may serve: ROUGE-L within `margin` points, hallucination not higher, and,
    where both were checked on the generated meetings, no fewer facts right and no more wrong."""
    c_rouge, s_rouge = 100 * candidate["rougeL"], 100 * served["rougeL"]
    c_hall, s_hall = 100 * candidate["hallucination"], 100 * served["hallucination"]
    said = f"ROUGE-L {c_rouge:.1f} vs {s_rouge:.1f}, hallucination {c_hall:.1f}% vs {s_hall:.1f}%"
    c_facts, s_facts = candidate.get("facts"), served.get("facts")
    checked = bool(c_facts and s_facts)
    if checked:
        said += (f", facts right {c_facts['right']} vs {s_facts['right']} and wrong {c_facts['wrong']} vs "
                 f"{s_facts['wrong']} of {c_facts['facts']}")
    if c_rouge < s_rouge - margin:
        return False, f"refused: ROUGE-L is worse by more than {margin:g} points ({said})"
    if c_hall > s_hall:
        return False, f"refused: the hallucination rate is higher ({said})"
    if checked and c_facts["right"] < s_facts["right"]:
        return False, f"refused: fewer facts right on the generated meetings ({said})"
    if checked and c_facts["wrong"] > s_facts["wrong"]:
        return False, f"refused: more facts wrong on the generated meetings ({said})"
    return True, f"promoted: not worse on the held-out items{' or the facts' if checked else ''} ({said})"


def lead_scores(settings: Settings, items: list[EvalItem], audio: list) -> dict:
    """The lead baseline (each item's first words) on the gate's items: what a first student must beat."""
    from training.evaluate import summarize_items

    row = summarize_items(settings, "lead", items, audio).row()
    return {"key": gate_key(items), "items": len(items), "rougeL": round(row["rougeL"], 4),
            "hallucination": round(row["hallucination"], 4), "words": round(row["words"], 1)}


def decide_first(candidate: dict, lead: dict) -> tuple[bool, str]:
    """Whether a student may serve where none does yet: its ROUGE-L must beat quoting the recording's
    first words (the lead quotes, so its hallucination is no bar a model can be held to)."""
    c_rouge, l_rouge = 100 * candidate["rougeL"], 100 * lead["rougeL"]
    hallucination = 100 * candidate["hallucination"]
    said = f"ROUGE-L {c_rouge:.1f} vs the lead baseline's {l_rouge:.1f}, hallucination {hallucination:.1f}%"
    if c_rouge <= l_rouge:
        return False, f"refused: the first student must summarize better than the recordings' first words ({said})"
    return True, f"promoted: the first student, better than the lead baseline ({said})"


def serve_if_better(settings: Settings, candidate: str, served_name: str | None, cfg: RefreshConfig,
                    progress=None, actor: str = "") -> tuple[bool, str, dict]:
    """The gate: the candidate against the served student (or, with none served, the lead baseline) on
    the held-out items; promotes it if it passes and the served student did not change meanwhile.
    The outcome is kept on the candidate's row. Returns (promoted, reason, scores)."""
    items, audio = gate_items(settings, cfg)
    if served_name:
        against = held_out_scores(settings, served_name, items, audio, scaled(progress, 0.0, 0.4))
    else:
        against = lead_scores(settings, items, audio)
    candidate_scores = held_out_scores(settings, candidate, items, audio, scaled(progress, 0.4, 0.8))
    if served_name and cfg.facts_meetings:  # a first student is held to the lead baseline, which writes no notes
        against = against | {"facts": facts_scores(settings, served_name, cfg.facts_meetings,
                                                   scaled(progress, 0.8, 0.9))}
        candidate_scores = candidate_scores | {"facts": facts_scores(settings, candidate, cfg.facts_meetings,
                                                                     scaled(progress, 0.9, 1.0))}
    promote, reason = (decide(candidate_scores, against, cfg.margin) if served_name
                       else decide_first(candidate_scores, against))
    with session_scope(settings.db_url) as session:
        version = registry.get(session, candidate)
        version.metrics = dict(version.metrics) | {"gate": {"promoted": promote, "reason": reason,
                                                            "against": served_name or "lead", "served": against}}
        still_served = registry.served(session, "student")
        if promote and (still_served.name if still_served else None) != served_name:
            promote, reason = False, "refused: the served version changed while the candidate was trained"
        if promote:
            registry.promote(session, version, reason=reason, actor=actor)
    return promote, reason, {"served" if served_name else "lead": against, "candidate": candidate_scores}


def refresh(settings: Settings, cfg: RefreshConfig = RefreshConfig(), progress=None) -> dict:
    """Runs one turn of the loop (see the module docstring); returns what happened, for the job."""
    from training.stages.dpo import DPOConfig, NoPairs, dpo
    from training.stages.kd import KDConfig, kd

    started = time.monotonic()
    report = progress or (lambda fraction, message: None)
    ensure_schema(settings.db_url)
    with session_scope(settings.db_url) as session:
        served = registry.served(session, "student")
        if served is None:
            raise registry.RegistryError("no student is served yet: train one first (the admin tab's \"Train a "
                                         "student\", or `speechsum train all --serve`)")
        since = schema.aware(served.created_at)
        seen = feedback.new_data(session, since)
        served_name = served.name
    outcome = {"served_before": served_name, **seen}
    if not cfg.force and seen["votes"] < cfg.min_votes and seen["uploads"] < cfg.min_uploads:
        message = (f"skipped: {seen['votes']} new votes (needs {cfg.min_votes}) and {seen['uploads']} new "
                   f"uploads (needs {cfg.min_uploads}) since {served_name} was trained")
        return outcome | {"outcome": "skipped", "message": message}

    auto = cfg.auto_items + cfg.auto_meetings > 0
    run_kd, run_dpo = seen["uploads"] > 0, seen["votes"] > 0 or auto
    if not (run_kd or run_dpo):
        return outcome | {"outcome": "skipped", "message": "skipped: nothing to train on (no uploads, no votes, "
                                                          "no automatic pairs asked for)"}
    minutes = cfg.minutes / (int(run_kd) + int(run_dpo))
    parent = served_name
    if run_kd:
        report(0.02, f"distilling on {seen['uploads']} new uploads")
        kd_cfg = KDConfig(steps=0, minutes=minutes, parent=parent, uploads_since=since.isoformat(),
                          seed=cfg.seed, epochs=cfg.epochs)
        parent = kd(settings, kd_cfg, scaled(progress, 0.02, 0.4), data=([], []))
    if run_dpo:
        report(0.4, f"DPO on {seen['votes']} new votes and the automatic pairs of {cfg.auto_items} items and "
                    f"{cfg.auto_meetings} generated meetings")
        dpo_cfg = DPOConfig(steps=0, minutes=minutes, parent=parent, votes_since=since.isoformat(),
                            items=cfg.auto_items, meetings=cfg.auto_meetings, seed=cfg.seed, epochs=cfg.epochs)
        try:
            parent = dpo(settings, dpo_cfg, scaled(progress, 0.4, 0.7), data=None if auto else ([], []))
        except NoPairs as exc:  # ties and "both bad" only: nothing to prefer; KD's candidate, if any, goes on
            outcome["dpo"] = str(exc)
    if parent == served_name:
        return outcome | {"outcome": "skipped", "message": "skipped: the new votes give no preference pair "
                                                          "(only ties or both bad) and there are no new uploads"}
    candidate = parent

    report(0.7, "evaluating the served version and the candidate on the held-out items")
    promote, reason, scores = serve_if_better(settings, candidate, served_name, cfg, scaled(progress, 0.7, 1.0),
                                              actor="refresh")
    with session_scope(settings.db_url) as session:
        candidate_id = registry.get(session, candidate).id
    return outcome | {"outcome": "promoted" if promote else "refused", "message": reason, "candidate": candidate,
                      "version_id": candidate_id, "served_after": candidate if promote else served_name,
                      "scores": scores, "minutes": round((time.monotonic() - started) / 60, 1)}
