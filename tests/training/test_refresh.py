"""The learning loop's refresh on tiny models saved to disk: thresholds, KD + DPO from the served
student, the gate (promote a not-worse candidate, refuse a worse one, on the held-out items or on the
generated meetings' facts, and say why)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from storage import registry, schema
from storage.db import session_scope
from tests.helpers.store import FAST, add_upload_with_thumbs
from tests.helpers.tiny import served_disk_student
from training.refresh import FACTS_SEED, RefreshConfig, decide, gate_items, gate_key, refresh


def cache_served_scores(settings, name: str, rouge_l: float, hallucination: float) -> None:
    """What the served version scored on the gate's items (as an earlier refresh would have cached)."""
    items, _ = gate_items(settings, RefreshConfig(**FAST))
    with session_scope(settings.db_url) as s:
        version = registry.get(s, name)
        version.metrics = {"held_out": {"key": gate_key(items), "items": len(items), "rougeL": rouge_l,
                                        "hallucination": hallucination, "words": 5.0}}


def test_the_gate_refuses_lower_rouge_beyond_the_margin_and_any_rise_in_hallucination():
    served = {"rougeL": 0.20, "hallucination": 0.30}
    assert decide({"rougeL": 0.195, "hallucination": 0.30}, served, margin=1.0)[0]
    assert not decide({"rougeL": 0.185, "hallucination": 0.10}, served, margin=1.0)[0]
    ok, reason = decide({"rougeL": 0.25, "hallucination": 0.31}, served, margin=0.0)
    assert not ok and "hallucination rate is higher" in reason and "31.0% vs 30.0%" in reason


def test_the_gate_refuses_fewer_facts_right_or_more_wrong_on_the_generated_meetings():
    served = {"rougeL": 0.20, "hallucination": 0.30, "facts": {"facts": 40, "right": 10, "wrong": 2}}
    better = {"rougeL": 0.20, "hallucination": 0.30, "facts": {"facts": 40, "right": 12, "wrong": 2}}
    ok, reason = decide(better, served, margin=0.0)
    assert ok and "facts right 12 vs 10 and wrong 2 vs 2 of 40" in reason
    ok, reason = decide(better | {"facts": {"facts": 40, "right": 9, "wrong": 0}}, served, margin=0.0)
    assert not ok and reason.startswith("refused: fewer facts right")
    ok, reason = decide(better | {"facts": {"facts": 40, "right": 15, "wrong": 3}}, served, margin=0.0)
    assert not ok and reason.startswith("refused: more facts wrong")
    assert decide({"rougeL": 0.20, "hallucination": 0.30}, served, margin=0.0)[0]  # no facts check asked for


def test_a_refresh_below_the_thresholds_trains_nothing(loop_settings, tmp_path):
    served_disk_student(loop_settings, tmp_path)
    add_upload_with_thumbs(loop_settings, tmp_path)
    out = refresh(loop_settings, RefreshConfig(**FAST | {"min_votes": 3, "min_uploads": 2}))
    assert out["outcome"] == "skipped" and "2 new votes (needs 3)" in out["message"]
    with session_scope(loop_settings.db_url) as s:
        assert [v.name for v in registry.versions(s)] == ["dpo-tiny"]


def test_a_refresh_without_a_served_student_says_how_to_get_one(loop_settings):
    with pytest.raises(registry.RegistryError, match="no student is served"):
        refresh(loop_settings, RefreshConfig(**FAST))


def test_a_candidate_not_worse_than_the_served_one_is_promoted_from_kd_and_dpo(loop_settings, tmp_path):
    served = served_disk_student(loop_settings, tmp_path)
    add_upload_with_thumbs(loop_settings, tmp_path, 2)
    cache_served_scores(loop_settings, served, rouge_l=0.0, hallucination=1.0)
    seen = []
    out = refresh(loop_settings, RefreshConfig(**FAST), progress=lambda f, m: seen.append(f))
    assert out["outcome"] == "promoted", out["message"]
    assert (out["votes"], out["uploads"]) == (4, 2)
    assert seen == sorted(seen) and 0.8 < seen[-1] <= 1.0
    with session_scope(loop_settings.db_url) as s:
        now = registry.served(s, "student")
        parent = s.get(schema.ModelVersion, now.parent_id)
        assert (now.name, now.stage, parent.stage) == (out["candidate"], "dpo", "kd")
        assert s.get(schema.ModelVersion, parent.parent_id).name == served
        assert now.metrics["vote_pairs"] == 2 and now.metrics["gate"]["promoted"]
        assert registry.history(s, "student")[-1].actor == "refresh"


def test_a_worse_candidate_is_not_promoted_and_the_reason_is_kept_on_it(loop_settings, tmp_path):
    served = served_disk_student(loop_settings, tmp_path)
    add_upload_with_thumbs(loop_settings, tmp_path, 2)
    cache_served_scores(loop_settings, served, rouge_l=1.0, hallucination=0.0)
    out = refresh(loop_settings, RefreshConfig(**FAST))
    assert out["outcome"] == "refused" and out["message"].startswith("refused: ROUGE-L is worse")
    with session_scope(loop_settings.db_url) as s:
        assert registry.served(s, "student").name == served
        candidate = registry.get(s, out["candidate"])
        assert candidate.status == "candidate" and candidate.metrics["gate"]["reason"] == out["message"]
        assert s.scalars(select(schema.Promotion)).all()[-1].version_id != candidate.id
    from app.admin import versions_table

    shown = {row["name"]: row for row in versions_table(loop_settings)}  # what the admin tab's table shows
    assert shown[out["candidate"]]["gate"] == out["message"] and shown[out["candidate"]]["status"] == "candidate"


@pytest.mark.slow
def test_a_candidate_that_states_fewer_facts_right_is_not_promoted(loop_settings, tmp_path):
    served = served_disk_student(loop_settings, tmp_path)
    add_upload_with_thumbs(loop_settings, tmp_path, 2)
    cache_served_scores(loop_settings, served, rouge_l=0.0, hallucination=1.0)  # passes the held-out items
    with session_scope(loop_settings.db_url) as s:
        version = registry.get(s, served)
        # every fact right: the tiny random candidate's notes are the transcript's own, which state some of them
        version.metrics = dict(version.metrics) | {"facts": {"key": f"{FACTS_SEED}:1", "meetings": 1, "facts": 5,
                                                             "right": 5, "wrong": 0}}
    out = refresh(loop_settings, RefreshConfig(**FAST | {"facts_meetings": 1}))
    assert out["outcome"] == "refused" and out["message"].startswith("refused: fewer facts right"), out["message"]
    facts = out["scores"]["candidate"]["facts"]
    assert facts["key"] == f"{FACTS_SEED}:1" and facts["right"] < 5 and facts["facts"] == 5
    with session_scope(loop_settings.db_url) as s:
        assert registry.served(s, "student").name == served
        assert registry.get(s, out["candidate"]).metrics["facts"] == facts  # cached for the next gate


@pytest.mark.slow
def test_simulated_users_vote_and_a_refresh_reports_before_and_after(loop_settings, tmp_path):
    from app.simulate import SimulateConfig, simulate

    served = served_disk_student(loop_settings, tmp_path)
    cache_served_scores(loop_settings, served, rouge_l=0.0, hallucination=1.0)
    cfg = SimulateConfig(votes=1, candidates=2, refresh=RefreshConfig(**FAST | {"force": True, "facts_meetings": 1}),
                         out_dir=tmp_path / "results")
    report = simulate(loop_settings, cfg)
    assert (report["uploads"], report["summaries"], report["votes"]) == (1, 2, 1)
    assert report["served_before"] == served and report["outcome"] in ("promoted", "refused"), report["message"]
    assert report["served_after"] == (report["candidate"] if report["outcome"] == "promoted" else served)
    assert {"served", "candidate"} <= set(report["scores"])
    assert {f["meetings"] for f in report["facts"].values()} == {1} and served in report["facts"]
    with session_scope(loop_settings.db_url) as s:
        votes = s.scalars(select(schema.ABVote)).all()
        assert [v.voter for v in votes] == ["sim:user000"]
    stem = tmp_path / "results" / f"{report['date']}-loop"
    assert "Served before: dpo-tiny" in stem.with_suffix(".md").read_text() and stem.with_suffix(".png").exists()


def test_a_simulated_user_votes_for_the_notes_with_more_facts_right_and_no_more_wrong():
    from app.simulate import LOOP_SEED, facts_vote
    from bench.facts_train import LONG_SEEDS, SEEDS
    from models.summarizer import Summary
    from training.data.meetings import make_meeting

    # not the training meetings (seed 1000), nor those notes changes are tuned on; the benchmark has its own generator
    assert not {LOOP_SEED, FACTS_SEED} & {1000, *SEEDS, *LONG_SEEDS} and LOOP_SEED != FACTS_SEED
    meeting = make_meeting(0, LOOP_SEED)
    fact = next(f for f in meeting.facts if f.superseded)
    subject = fact.subject
    right, wrong = f"The {subject} is {fact.value}.", f"The {subject} is {fact.superseded}."
    other = next(f for f in meeting.facts if f.subject != subject and f.kind != "owner")
    said_other = f"The {other.subject} is {other.value}."
    both = f"{right} {said_other}"
    notes = lambda text: Summary(text)  # noqa: E731
    assert facts_vote(notes(right), notes("The meeting went well."), meeting) == "left"
    assert facts_vote(notes("The meeting went well."), notes(wrong), meeting) == "left"  # absent beats wrong
    assert facts_vote(notes(right), notes(both), meeting) == "right"
    assert facts_vote(notes(f"{said_other} {wrong}"), notes("Hello."), meeting) == "tie"  # more right, more wrong
    assert facts_vote(notes(right), notes(right), meeting) == "tie"
