"""Tiny random-weight stand-ins for the stages' tests: a student, a teacher of the same tokenizer, items."""

from __future__ import annotations

import torch

from models.student import Student
from storage import registry
from storage.db import session_scope
from tests.conftest import tiny_chat_lm
from tests.models.test_student import WORDS, tiny_student
from training.evaluate import EvalItem
from training.teacher import Teacher

ITEMS = [
    EvalItem(f"qmsum-train-T{i:03d}-q00", query, f"Manager: the budget is approved\nUser: {text}", answer)
    for i, (query, text, answer) in enumerate([
        ("What about the budget?", "the budget is approved", "the budget is approved"),
        ("Summarize the recording in three sentences.", "Transcribe the audio.", "the audio is the budget"),
        ("", "the budget is the budget", "approved"),
        ("What is approved?", "the recording is approved", "the recording is approved"),
    ])
]


def tiny_teacher(seed: int = 5) -> Teacher:
    lm, tokenizer = tiny_chat_lm(WORDS, seed=seed)
    return Teacher(lm.requires_grad_(False), tokenizer, "tiny-teacher")


def tiny_frames(n: int, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(40 + 8 * i, 16, generator=g) for i in range(n)]


def registered_student(settings, tmp_path, name: str = "align-tiny", stage: str = "align", serve: bool = True
                       ) -> Student:
    student = tiny_student()
    checkpoint = student.save(tmp_path / "students" / name)
    with session_scope(settings.db_url) as s:
        version = registry.register(s, name=name, kind="student", stage=stage, checkpoint=checkpoint,
                                    bases=student.bases)
        if serve:
            registry.promote(s, version)
    return student
