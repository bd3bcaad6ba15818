"""A run's identity: the version name it registers and the commit it names."""

from __future__ import annotations

import pytest

from storage import registry
from storage.db import session_scope
from tests.helpers.tiny import tiny_student
from training.stages.kd import KDConfig, load_kd_teacher
from training.stages.runs import LoopConfig, Run


def test_two_runs_of_a_stage_finishing_in_the_same_second_get_two_names(tmp_path):
    from training.stages.runs import version_name

    first = version_name("sft", tmp_path)
    (tmp_path / first).mkdir()
    second = version_name("sft", tmp_path)
    (tmp_path / second).mkdir()
    assert second.startswith(first) and len({first, second, version_name("sft", tmp_path)}) == 3


def test_a_version_names_the_commit_its_run_started_from(settings, monkeypatch):
    from training.stages import runs

    monkeypatch.setattr(runs, "code_commit", lambda: "started-here")
    run = Run(settings.data_dir, "teacher", {}, None, "data")
    monkeypatch.setattr(runs, "code_commit", lambda: "moved-on")  # commits land while a long run trains
    report = {"steps": 1, "planned_steps": 1, "capped": False, "steps_per_minute": 1.0, "resumed_from": 0,
              "train_minutes": 0.1, "curve": [(0, 1.0, 1.0, {})]}
    name = runs.finish(settings, run, kind="teacher", stage="teacher", write=lambda path: path.mkdir(), bases={},
                       parent=None, cfg=LoopConfig(), data="data", report=report)
    with session_scope(settings.db_url) as s:
        assert registry.get(s, name).metrics["commit"] == "started-here"


def test_kd_refuses_a_teacher_version_of_another_lm_with_one_clear_line(settings, tmp_path):
    with session_scope(settings.db_url) as s:  # the shipped notes teacher: an adapter of the 1.5B LM
        registry.register(s, name="teacher-qwen", kind="teacher", stage="teacher", checkpoint=tmp_path,
                          bases={"llm": "qwen2.5-coder-1.5b-instruct (1.0)"})
    with pytest.raises(registry.RegistryError, match="teacher teacher-qwen is an adapter of qwen2.5-coder-1.5b"):
        load_kd_teacher(settings, KDConfig(teacher="teacher-qwen"), tiny_student())
