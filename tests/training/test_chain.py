"""`train all` as one job, on tiny models saved to disk: killed mid-stage and started again, it goes on
where it stopped; its last version serves only if it passes the gate (with no student served: the lead)."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import select

from app.worker import execute, scheduled_kind
from storage import jobs, registry, schema
from storage.db import session_scope
from tests.helpers.runs import kill_once_saved, start
from tests.helpers.tiny import served_disk_student
from training.refresh import decide_first

QUICK = dict(steps=0, epochs=1, batch_size=2, warmup_steps=1, save_minutes=0.0)

RUN_JOB = """
import sys
sys.path.insert(0, {root!r})
from app.worker import execute
execute({job_id})
"""


def chain_params(lm_dir: str) -> dict:
    """Every stage of the chain in seconds: no generated meetings, a step or two each; KD long enough to be
    caught mid-run (its samples are 6 tokens of a random model)."""
    return {"teacher": {"model": lm_dir, "meetings": 0, **QUICK}, "sft": {"meetings": 0, **QUICK},
            "kd": QUICK | {"steps": 100, "max_new_tokens": 6, "uploads": 0, "meetings": 0},
            "dpo": {"items": 1, "meetings": 0, "samples": 2, "max_new_tokens": 6, "votes": False, **QUICK},
            "gate": {"eval_items": 3}}


def test_a_first_student_serves_only_if_it_beats_the_lead_baseline():
    lead = {"rougeL": 0.20, "hallucination": 0.01}
    ok, reason = decide_first({"rougeL": 0.21, "hallucination": 0.5}, lead)
    assert ok and reason.startswith("promoted: the first student") and "21.0 vs the lead baseline's 20.0" in reason
    ok, reason = decide_first({"rougeL": 0.20, "hallucination": 0.0}, lead)
    assert not ok and reason.startswith("refused: the first student must summarize better")


def test_the_schedule_trains_a_student_where_none_is_served(loop_settings, tmp_path, monkeypatch):
    with session_scope(loop_settings.db_url) as s:
        assert scheduled_kind(s, loop_settings) == "train_all"
        assert scheduled_kind(s, loop_settings.model_copy(update={"train_when_empty": False})) == "refresh"
    served_disk_student(loop_settings, tmp_path)
    with session_scope(loop_settings.db_url) as s:
        assert scheduled_kind(s, loop_settings) == "refresh"


@pytest.mark.slow
def test_train_all_killed_mid_stage_goes_on_where_it_stopped_and_serves_nothing_worse_than_the_lead(
        loop_settings, tmp_path):
    aligned = served_disk_student(loop_settings, tmp_path, name="align-tiny", stage="align", serve=False)
    params = chain_params(str(tmp_path / "bases" / "lm"))
    with session_scope(loop_settings.db_url) as s:
        first = jobs.create(s, "train_all", params, actor="admin").id
    process = start(RUN_JOB, job_id=first)
    kill_once_saved(process, loop_settings.data_dir / "runs", lambda st: st["stage"] == "kd" and st["step"] >= 3)
    with session_scope(loop_settings.db_url) as s:
        made = Counter(v.stage for v in registry.versions(s))
    assert made == Counter(align=1, teacher=1, sft=1), "killed during KD, after teacher and SFT"

    with session_scope(loop_settings.db_url) as s:  # the admin (or the schedule) starts it again
        again = jobs.create(s, "train_all", params, actor="admin").id
    execute(again)
    with session_scope(loop_settings.db_url) as s:
        killed, job = jobs.get(s, first), jobs.get(s, again)
        assert killed.status == "failed" and killed.lock is None
        assert job.status == "succeeded", job.log[-2000:]
        versions = registry.versions(s)
        made = Counter(v.stage for v in versions)
        assert made["teacher"] == made["sft"] == made["kd"] == 1 and made["dpo"] <= 1  # none trained twice
        kd = next(v for v in versions if v.stage == "kd")
        assert kd.metrics["resumed_from"] >= 3 and kd.metrics["steps"] == 100
        sft = next(v for v in versions if v.stage == "sft")
        assert sft.parent_id == registry.get(s, aligned).id
        candidate = registry.get(s, job.result["candidate"])
        assert candidate.stage in ("kd", "dpo") and job.version_id == candidate.id
        # a random-weight student does not beat quoting the first words: it stays a candidate
        assert not job.result["promoted"] and candidate.status == "candidate"
        assert candidate.metrics["gate"]["against"] == "lead" and registry.served(s, "student") is None
        assert 42 / 89 <= killed.progress <= 59 / 89  # KD's share of the chain's usual minutes (chain.MINUTES)
        assert job.progress == 1.0
        assert s.scalars(select(schema.Promotion)).all() == []
    assert not list((loop_settings.data_dir / "runs").glob("chain-*.json")), "a finished chain starts afresh"
