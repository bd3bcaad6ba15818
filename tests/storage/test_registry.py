"""Model versions on SQLite and PostgreSQL: register, promote, roll back; a run never changes what is served."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from storage import registry, schema
from storage.db import session_scope
from storage.registry import RegistryError


def checkpoint(tmp_path, name: str):
    folder = tmp_path / "students" / name
    folder.mkdir(parents=True)
    (folder / "weights.bin").write_bytes(name.encode())
    return folder


def add(session, tmp_path, name: str, kind: str = "student", stage: str = "sft", parent=None):
    return registry.register(session, name=name, kind=kind, stage=stage, checkpoint=checkpoint(tmp_path, name),
                             parent=parent, config={"lr": 1e-4}, data_hash="abc", metrics={"rougeL": 20.0})


def test_promote_serves_one_version_per_kind_and_logs_every_change(settings, tmp_path):
    with session_scope(settings.db_url) as s:
        first = add(s, tmp_path, "sft-1")
        assert first.status == "candidate" and registry.served(s, "student") is None
        registry.promote(s, first, reason="first", actor="alice")
        second = add(s, tmp_path, "kd-1", stage="kd", parent=first)
        teacher = add(s, tmp_path, "teacher-1", kind="teacher", stage="teacher")
        registry.promote(s, teacher)
    with session_scope(settings.db_url) as s:
        assert registry.served(s, "student").name == "sft-1"  # a new candidate changes nothing
        registry.promote(s, registry.get(s, "kd-1"))
    with session_scope(settings.db_url) as s:
        assert registry.served(s, "student").name == "kd-1"
        assert registry.get(s, "sft-1").status == "retired"
        assert registry.served(s, "teacher").name == "teacher-1"  # kinds are independent
        assert registry.get(s, "kd-1").parent_id == registry.get(s, "sft-1").id
        log = registry.history(s, "student")
        assert [(p.action, p.version_id, p.previous_id) for p in log] == [
            ("promote", first.id, None), ("promote", second.id, first.id)]
        assert log[0].actor == "alice" and log[0].reason == "first"


def test_rollback_walks_back_the_promotions(settings, tmp_path):
    with session_scope(settings.db_url) as s:
        a = add(s, tmp_path, "a")
        b = add(s, tmp_path, "b", parent=a)
        c = add(s, tmp_path, "c", parent=b)
        for v in (a, b, c):
            registry.promote(s, v)
        registry.rollback(s, "student")
        assert registry.served(s, "student").name == "b"
        registry.rollback(s, "student")
        assert registry.served(s, "student").name == "a"
        with pytest.raises(RegistryError, match="nothing to roll back"):
            registry.rollback(s, "student")
        assert [p.action for p in registry.history(s)] == ["promote"] * 3 + ["rollback"] * 2
        served = s.scalar(select(func.count()).select_from(schema.ModelVersion)
                          .where(schema.ModelVersion.status == "served"))
        assert served == 1


def test_refuses_failed_changed_missing_and_unknown_versions(settings, tmp_path):
    with session_scope(settings.db_url) as s:
        failed = registry.register(s, name="f", kind="student", stage="kd", checkpoint=checkpoint(tmp_path, "f"),
                                   status="failed")
        with pytest.raises(RegistryError, match="failed"):
            registry.promote(s, failed)
        changed = add(s, tmp_path, "changed")
        (tmp_path / "students" / "changed" / "weights.bin").write_bytes(b"tampered")
        with pytest.raises(RegistryError, match="changed since"):
            registry.promote(s, changed)
        gone = add(s, tmp_path, "gone")
        for f in (tmp_path / "students" / "gone").iterdir():
            f.unlink()
        (tmp_path / "students" / "gone").rmdir()
        with pytest.raises(RegistryError, match="missing"):
            registry.promote(s, gone)
        with pytest.raises(RegistryError, match="no model version"):
            registry.get(s, "nope")
        with pytest.raises(RegistryError, match="only promote"):
            registry.register(s, name="x", kind="student", stage="sft", checkpoint=tmp_path, status="served")
        assert registry.served(s, "student") is None


def test_the_newest_teacher_of_an_lm_skips_adapters_of_another_lm(settings, tmp_path):
    """KD asks for the newest teacher of the student's LM: the shipped notes teacher (an adapter of
    the 1.5B LM), newer or not, must not be loaded onto SmolLM2."""
    with session_scope(settings.db_url) as s:
        for name, llm in (("teacher-smol-1", "smol"), ("teacher-smol-2", "smol"), ("teacher-qwen", "qwen")):
            registry.register(s, name=name, kind="teacher", stage="teacher", checkpoint=checkpoint(tmp_path, name),
                              bases={"llm": llm})
        assert registry.latest(s, "teacher").name == "teacher-qwen"
        assert registry.latest(s, "teacher", llm="smol").name == "teacher-smol-2"
        assert registry.latest(s, "teacher", llm="other") is None
