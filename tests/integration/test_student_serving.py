"""`speechsum summarize --system student` on the real bases, as a user runs it, served from the registry.

The checkpoints here are freshly built (untrained) students: these tests check the serving path
(which version serves, promotion and rollback without a restart, what a summary records), not
summary quality, which `make bench-stages` measures.
"""

from __future__ import annotations

import json

import pytest
import torch
from sqlalchemy import select

from models.student import StudentConfig, build_student
from storage import schema
from storage.db import session_scope
from storage.settings import load_settings
from tests.conftest import MODEL_CACHE, table_counts
from tests.helpers.real import speechsum
from training.data.tts import synthesize

pytestmark = pytest.mark.real
TEXT = "We approved the budget for the new remote control, and Tom will order the parts on Monday."


def test_without_a_checkpoint_the_student_is_a_clear_error(data_env, tmp_path):
    wav = synthesize(TEXT, tmp_path / "memo.wav")
    done = speechsum("summarize", str(wav), "--system", "student")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "speechsum: error: no student is served yet: train one with `speechsum train all`, "
        "then `speechsum models promote VERSION`")
    assert table_counts(load_settings())["summaries"] == 0


@pytest.mark.slow  # 67 s on 2 cores: two real students summarize
def test_a_candidate_is_not_served_until_promoted_and_summaries_record_the_version(data_env, tmp_path):
    build_student(StudentConfig(), MODEL_CACHE).save(data_env / "students" / "align-test")
    assert speechsum("models", "import", str(data_env / "students" / "align-test")).returncode == 0
    wav = synthesize(TEXT, tmp_path / "memo.wav")
    assert speechsum("summarize", str(wav), "--system", "student").returncode == 1  # a candidate only
    assert speechsum("models", "promote", "align-test").returncode == 0
    done = speechsum("summarize", str(wav), "--system", "student", "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert (out["system"], out["model_version"]) == ("student", "student:align-test")
    assert out["summary"] and "budget" in out["transcript"]["text"]
    with session_scope(load_settings().db_url) as s:
        row = s.scalars(select(schema.Summary)).one()
        version = s.scalars(select(schema.ModelVersion)).one()
        assert (row.system, row.model_version, row.transcript_id) == ("student", "student:align-test", None)
        assert row.model_version_id == version.id and row.raw and row.dropped is not None


def test_promotion_and_rollback_reach_the_next_summary_without_a_restart(data_env, tmp_path):
    from app.pipeline import summarize_file
    from app.versions import import_checkpoint, promote_version, rollback_version

    settings = load_settings()
    for name, seed in (("align-a", 0), ("align-b", 1)):
        torch.manual_seed(seed)  # two different students
        import_checkpoint(settings, build_student(StudentConfig(), MODEL_CACHE).save(data_env / "students" / name),
                          "align")
    wav = synthesize(TEXT, tmp_path / "memo.wav")
    versions = []
    for step in (lambda: promote_version(settings, "align-a"), lambda: promote_version(settings, "align-b"),
                 lambda: rollback_version(settings, "student")):
        step()
        versions.append(summarize_file(settings, wav, system="student").summary.model_version)
    assert versions == ["student:align-a", "student:align-b", "student:align-a"]


def test_evaluation_scores_a_named_student_version(data_env, tmp_path):
    from app.versions import import_checkpoint
    from training.data.items import EvalItem
    from training.evaluate import evaluate

    import_checkpoint(load_settings(), build_student(StudentConfig(), MODEL_CACHE).save(
        data_env / "students" / "align-test"), "align")
    item = EvalItem("i1", "What did we approve?", f"A: {TEXT}", "The budget for the remote control.")
    result = evaluate(load_settings(summary_max_tokens=24), "student:align-test", [item],
                      [synthesize(TEXT, tmp_path / "i1.wav")])
    assert (result.system, result.model_version) == ("student:align-test", "student:align-test")
    assert result.row()["items"] == 1 and result.items[0].summary


def test_a_served_teacher_of_another_base_lm_is_not_put_on_the_configured_one(data_env, tmp_path):
    from models.serving import load_summarizer
    from models.summarizer import summary_prompt
    from storage import registry
    from storage.db import ensure_schema

    settings = load_settings()
    ensure_schema(settings.db_url)
    folder = tmp_path / "teacher-x"
    folder.mkdir()
    (folder / "adapter_config.json").write_text("{}")
    with session_scope(settings.db_url) as s:
        registry.promote(s, registry.register(s, name="teacher-x", kind="teacher", stage="teacher",
                                              checkpoint=folder, bases={"llm": "some-other-lm"}))
    cascade = load_summarizer(settings)
    assert cascade.model_version_id is None and cascade.prompt is summary_prompt
