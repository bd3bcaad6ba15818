"""`speechsum summarize --system student` on the real bases, as a user runs it.

The checkpoint here is a freshly built (untrained) student: these tests check the serving path,
not summary quality, which the alignment benchmark and `make bench` measure.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from storage.config import load_settings
from models.student import StudentConfig, build_student
from storage import schema
from storage.db import session_scope
from tests.conftest import MODEL_CACHE, table_counts
from tests.integration.test_real_models import speechsum
from training.tts import synthesize

pytestmark = pytest.mark.real
TEXT = "We approved the budget for the new remote control, and Tom will order the parts on Monday."


def test_without_a_checkpoint_the_student_is_a_clear_error(data_env, tmp_path):
    wav = synthesize(TEXT, tmp_path / "memo.wav")
    done = speechsum("summarize", str(wav), "--system", "student")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "speechsum: error: there is no student checkpoint yet: train one with `speechsum train align`")
    assert table_counts(load_settings())["summaries"] == 0


def test_student_summary_records_its_system_and_version(data_env, tmp_path):
    build_student(StudentConfig(), MODEL_CACHE).save(data_env / "students" / "align-test")
    wav = synthesize(TEXT, tmp_path / "memo.wav")
    done = speechsum("summarize", str(wav), "--system", "student", "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert (out["system"], out["model_version"]) == ("student", "student:align-test")
    assert out["summary"] and "budget" in out["transcript"]["text"]
    with session_scope(load_settings().db_url) as s:
        row = s.scalars(select(schema.Summary)).one()
        assert (row.system, row.model_version, row.transcript_id) == ("student", "student:align-test", None)


def test_evaluation_scores_a_named_student_checkpoint(data_env, tmp_path):
    from training.evaluate import EvalItem, evaluate

    build_student(StudentConfig(), MODEL_CACHE).save(data_env / "students" / "align-test")
    item = EvalItem("i1", "What did we approve?", f"A: {TEXT}", "The budget for the remote control.")
    result = evaluate(load_settings(summary_max_tokens=24), "student:align-test", [item],
                      [synthesize(TEXT, tmp_path / "i1.wav")])
    assert (result.system, result.model_version) == ("student:align-test", "student:align-test")
    assert result.row()["items"] == 1 and result.items[0].summary
