"""The CUDA path: one short run of each stage and one summary on the GPU (skipped without one).

Run it on a machine with a GPU: `pytest -m gpu`. It uses the tiny models of the other stage tests;
`bench/stage_steps.py` times steps of the real shapes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.asr import Segment, Transcript
from models.summarizer import StudentSummarizer
from storage import registry
from storage.db import session_scope
from tests.helpers.tiny import ITEMS, registered_student, tiny_frames, tiny_teacher
from training.losses import dpo_loss
from training.stages.dpo import Pair, pair_logprobs
from training.stages.kd import KDConfig, kd
from training.stages.sft import SFTConfig, sft

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]
QUICK = dict(steps=0, minutes=5.0, batch_size=2, epochs=1, warmup_steps=1, save_minutes=0.0)


def test_each_stage_and_a_summary_run_on_cuda(settings, tmp_path):
    settings = settings.model_copy(update={"device": "cuda"})
    student = registered_student(settings, tmp_path).to("cuda")
    data = (ITEMS, [f.to("cuda") for f in tiny_frames(len(ITEMS))])
    teacher = tiny_teacher()
    teacher.lm.to("cuda")
    sft(settings, SFTConfig(**QUICK), student=student, data=data)
    kd(settings, KDConfig(**QUICK, max_new_tokens=6), student=student, data=data, teacher=teacher)
    assert all(p.device.type == "cuda" for p in student.parameters())

    pairs = [Pair("What about the budget?", "the budget is approved", "the audio audio", "auto", item=0)]
    embeds = [student.projector(data[1][0])]
    chosen, rejected = pair_logprobs(student, embeds, pairs)
    loss, _, _ = dpo_loss(chosen, rejected, chosen.detach() - 1, rejected.detach(), 0.1)
    loss.backward()
    assert student.projector.mlp[0].weight.grad.device.type == "cuda"

    audio = (0.1 * np.random.default_rng(0).standard_normal(16000 * 3)).astype(np.float32)
    transcript = Transcript([Segment(0.0, 3.0, "the budget is approved.")], "en", 1.0, 3.0, "test")
    summary = StudentSummarizer(student.eval(), "student:tiny", piece_s=1.0).summarize(audio, transcript, "Budget?")
    assert summary.raw and summary.system == "student" and summary.latency_s > 0
    with session_scope(settings.db_url) as s:
        assert [v.stage for v in registry.versions(s)] == ["align", "sft", "kd"]
