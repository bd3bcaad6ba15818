"""The three stages on tiny random-weight models: masks, one short run each, versions, kill and resume."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from storage import registry, schema
from storage.db import session_scope
from tests.conftest import write_wav
from tests.helpers.runs import finished, kill_once_saved, start
from tests.helpers.tiny import ITEMS, registered_student, tiny_frames, tiny_teacher
from training.data.items import EvalItem
from training.stages.dpo import DPOConfig, auto_pairs, dpo, parent_samples, pick_pair
from training.stages.kd import Example, KDConfig, kd, kd_loss
from training.stages.runs import LoopConfig, Run, fit, lr_at
from training.stages.sft import SFTConfig, answer_ids, sft

QUICK = dict(steps=0, minutes=5.0, batch_size=2, epochs=1, warmup_steps=1, save_minutes=0.0)


def test_continuation_logits_cover_only_the_continuation_and_match_the_full_forward():
    from tests.helpers.tiny import tiny_student

    student = tiny_student()
    embeds = [student.projector(f) for f in tiny_frames(2)]
    conts = answer_ids(student, ["the budget is approved", "approved"])
    logits, ids, mask = student.continuation_logits(embeds, ["What?", "Why?"], conts)
    assert logits.shape[:2] == ids.shape == mask.shape == (2, len(conts[0]))
    assert mask.tolist() == [[1] * len(conts[0]), [0] * (len(conts[0]) - len(conts[1])) + [1] * len(conts[1])]
    assert ids[1, -len(conts[1]):].tolist() == conts[1]  # the last positions are the continuation itself
    full_embeds, full_mask, _ = student.batch(embeds, ["What?", "Why?"], conts)
    positions = (full_mask.cumsum(-1) - 1).clamp(min=0)
    full = student.lm(inputs_embeds=full_embeds, attention_mask=full_mask, position_ids=positions).logits
    torch.testing.assert_close(logits, full[:, -len(conts[0]) - 1 : -1], rtol=1e-4, atol=1e-5)


def test_teacher_scores_the_same_positions_as_the_student():
    teacher = tiny_teacher()
    conts = [[5, 6, 7], [6]]
    logits, ids, mask = teacher.continuation_logits(["a b c", "a much longer transcript here"], ["q", None], conts)
    assert logits.shape[:2] == (2, 3) and mask.tolist() == [[1, 1, 1], [0, 0, 1]]
    assert ids[0].tolist() == [5, 6, 7] and ids[1, -1].item() == 6


def test_kd_loss_on_samples_and_on_human_answers_learns_toward_the_teacher(monkeypatch):
    from tests.helpers.tiny import tiny_student

    student, teacher = tiny_student(), tiny_teacher()
    frames, examples = tiny_frames(2), [Example(i.transcript, i.query, i.reference) for i in ITEMS[:2]]
    loss, extras = kd_loss(student, teacher, frames, examples, KDConfig(lam=0.0))
    assert not extras["supervised"] and loss.item() > 0 and extras["tokens"] >= 1
    loss, extras = kd_loss(student, teacher, frames, examples, KDConfig(lam=1.0))
    assert extras["supervised"]
    params = student.trainable_parameters()
    optimizer = torch.optim.Adam(params, lr=1e-2)
    first = None
    for _ in range(15):  # teacher-forced on fixed tokens: the divergence must fall
        loss, _ = kd_loss(student, teacher, frames, examples, KDConfig(lam=1.0))
        first = first if first is not None else loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.7 * first


def test_each_stage_registers_a_candidate_and_never_changes_what_is_served(settings, tmp_path):
    student = registered_student(settings, tmp_path)
    frames = tiny_frames(len(ITEMS))
    data = (ITEMS, frames)
    name_sft = sft(settings, SFTConfig(**QUICK), student=student, data=data)
    name_kd = kd(settings, KDConfig(**QUICK, max_new_tokens=6), student=student, data=data, teacher=tiny_teacher())
    wav = write_wav(tmp_path / "user.wav", 0.1 * np.random.default_rng(0).standard_normal(16000).astype(np.float32))
    with session_scope(settings.db_url) as s:  # one user's A/B vote: a pair for DPO
        rec = schema.Recording(sha256="x" * 64, original_name="user.wav", duration_s=1.0, size_bytes=1,
                               stored_path=str(wav), uploader="u")
        s.add(rec)
        s.flush()
        a, b = (schema.Summary(recording_id=rec.id, text=t, raw=t, system="student", model_version="v",
                               latency_s=0.1, query="What about the budget?")
                for t in ("the budget is approved", "the audio audio audio"))
        s.add_all([a, b])
        s.flush()
        s.add(schema.ABVote(left_summary_id=a.id, right_summary_id=b.id, pair=f"{a.id}:{b.id}", voter="u",
                            choice="left"))
    name_dpo = dpo(settings, DPOConfig(**QUICK, max_new_tokens=6), student=student, data=([], []))
    with session_scope(settings.db_url) as s:
        assert registry.served(s, "student").name == "align-tiny"
        chain = [registry.get(s, n) for n in ("align-tiny", name_sft, name_kd, name_dpo)]
        assert [v.stage for v in chain] == ["align", "sft", "kd", "dpo"]
        assert all(v.status == "candidate" for v in chain[1:])
        assert [v.parent_id for v in chain[1:]] == [v.id for v in chain[:-1]]
        assert chain[3].metrics["vote_pairs"] == 1 and chain[3].metrics["vote_ids"] == ["ab:1"]
        assert "reward_accuracy" in chain[3].metrics and chain[1].metrics["steps"] == 2
        assert all(len(v.sha256) == 64 and os.path.isdir(v.checkpoint) for v in chain)


def test_sft_targets_name_no_speaker_the_audio_never_names():
    from training.data.items import heard_answer

    item = EvalItem("i", "What did they decide?",
                    "Project Manager: Okay, Maria, the budget.\nMarketing: Yes.\nMaria: I approve the budget.",
                    "The Project Manager asked Maria. Marketing and Project Manager agreed. Project Manager's plan.")
    assert heard_answer(item) == ("A participant asked Maria. Two participants agreed. A participant's plan.")


def test_the_teacher_learns_from_what_the_recording_says():
    """Fine-tuned on labelled transcripts, the teacher would score up names the student never hears."""
    from models.student import autocast, token_logprobs
    from training.data.items import heard_answer
    from training.losses import nll_loss
    from training.stages.teacher import answer_nll

    teacher = tiny_teacher()
    item = EvalItem("i", "What did they decide?", "Project Manager: Okay, the budget.\nMarketing: Yes, approved.",
                    "The Project Manager and Marketing approved the budget.")
    eos = teacher.tokenizer.eos_token_id
    answer = teacher.tokenizer(heard_answer(item), add_special_tokens=False)["input_ids"] + [eos]
    with torch.no_grad(), autocast(teacher.device):
        expected = nll_loss(*token_logprobs(*teacher.continuation_logits(["Okay, the budget. Yes, approved."],
                                                                          [item.query], [answer])))
        heard, labelled = answer_nll(teacher, [item], heard=True), answer_nll(teacher, [item])
    torch.testing.assert_close(heard, expected)
    assert abs(heard.item() - labelled.item()) > 1e-4


def test_dpo_without_any_pair_fails_clearly_and_registers_nothing(settings, tmp_path):
    student = registered_student(settings, tmp_path, name="kd-tiny", stage="kd")
    with pytest.raises(ValueError, match="no preference pairs"):
        dpo(settings, DPOConfig(**QUICK), student=student, data=([], []))
    with session_scope(settings.db_url) as s:
        assert [v.name for v in registry.versions(s)] == ["kd-tiny"]


def test_automatic_pairs_prefer_the_transcripts_values_to_vagueness_and_refuse_the_invented_and_copied():
    item = EvalItem("i", "What about the budget?", "A: Maria approved the budget of forty euros for the launch.",
                    "Maria approved the launch budget.")
    invented = "John approved 900 dollars for Tokyo."
    vague = "The budget was discussed."
    stated = "Maria approved 40 euros for the launch."
    copied = "Maria approved the budget of forty euros for the launch. " * 3
    assert pick_pair([invented, vague, stated, copied], item) == (stated, invented)
    assert pick_pair([vague, stated], item) == (stated, vague)  # naming the values beats saying nothing
    assert pick_pair([copied, invented], item) is None  # copying is not a chosen summary
    assert pick_pair([vague, "The launch budget came up."], item) is None  # neither states a value


def test_on_a_generated_meeting_right_beats_absent_and_absent_beats_wrong():
    from training.data.meetings import make_meeting, meeting_items, meeting_of

    item = meeting_items(1)[0]
    meeting = meeting_of(item)
    assert meeting == make_meeting(0)
    fact = next(f for f in meeting.facts if f.superseded)
    name = fact.subject
    right, wrong, absent = (f"The {name} is {fact.value}.", f"The {name} is {fact.superseded}.",
                            "The meeting went well.")
    assert pick_pair([absent, right], item) == (right, absent)
    assert pick_pair([wrong, absent], item) == (absent, wrong)
    assert pick_pair([wrong, right, absent], item) == (right, wrong)


def test_the_parents_samples_are_kept_and_not_drawn_again(tmp_path):
    item = EvalItem("i", "What about the budget?", "A: Maria approved the budget.", "Maria approved it.")
    cache = tmp_path / "samples.json"
    cache.write_text(json.dumps({"i": ["Maria approved the budget.", "John paid 900 dollars."]}))
    # No student is needed: every item's samples are in the cache already.
    samples = parent_samples(None, [item], [torch.zeros(1)], DPOConfig(), cache)
    assert samples == [["Maria approved the budget.", "John paid 900 dollars."]]
    assert [(p.chosen, p.rejected) for p in auto_pairs(samples, [item], DPOConfig())] == [
        ("Maria approved the budget.", "John paid 900 dollars.")]


def test_sampling_stops_at_its_budget_and_a_resumed_run_pairs_the_same_items(tmp_path):
    items = [EvalItem(i, "What about the budget?", "A: Maria approved the budget.", "Maria approved it.")
             for i in ("a", "b")]
    cache = tmp_path / "samples.json"
    cache.write_text(json.dumps({"a": ["Maria approved the budget.", "John paid 900 dollars."]}))
    # No student: with no time left, item "b" is never sampled.
    spent = parent_samples(None, items, [torch.zeros(1)] * 2, DPOConfig(sample_minutes=0.0), cache)
    assert spent == [["Maria approved the budget.", "John paid 900 dollars."], []]
    assert len(auto_pairs(spent, items, DPOConfig())) == 1
    again = parent_samples(None, items, [torch.zeros(1)] * 2, DPOConfig(sample_minutes=60.0), cache)
    assert again == spent  # the stop is kept: a resumed run does not sample "b" now


def test_an_items_samples_do_not_depend_on_the_other_items_in_the_list(tmp_path):
    from tests.helpers.tiny import tiny_student

    student, frames = tiny_student().eval(), tiny_frames(2)
    cfg = DPOConfig(samples=2, max_new_tokens=6)
    both = parent_samples(student, ITEMS[:2], frames, cfg, tmp_path / "both.json")
    alone = parent_samples(student, ITEMS[1:2], frames[1:2], cfg, tmp_path / "alone.json")
    assert alone == both[1:]


RESUMABLE = """
import sys, time, torch
from pathlib import Path
sys.path.insert(0, {root!r})
from tests.helpers.tiny import tiny_student
from tests.helpers.tiny import ITEMS, tiny_frames
from training.stages.runs import LoopConfig, Run, fit
from training.stages.sft import sft_loss
student, frames = tiny_student(), tiny_frames(len(ITEMS))
def loss_fn(batch):
    time.sleep({pause})
    return sft_loss(student, [frames[i] for i in batch], [ITEMS[i] for i in batch]), {{}}
run = Run(Path({data!r}), "sft", {{"test": 1}}, None, "d")
report = fit(run, student, loss_fn, [f.shape[0] for f in frames], LoopConfig(minutes=60, batch_size=1, epochs=3,
             warmup_steps=1, save_minutes=0.0, lr=1e-2), "test")
torch.save({{"weights": {{n: p for n, p in student.named_parameters() if p.requires_grad}}, "report": report}},
           {out!r})
"""


@pytest.mark.slow
def test_a_run_killed_with_sigkill_resumes_where_it_saved_and_ends_as_an_unbroken_run(tmp_path):
    run = lambda data, out, pause: start(RESUMABLE, data=str(tmp_path / data), out=str(tmp_path / out), pause=pause)  # noqa: E731
    whole, killed = run("a", "whole.pt", 0.0), run("b", "never.pt", 0.5)
    kill_once_saved(killed, tmp_path / "b" / "runs", lambda state: state["step"] >= 4)
    assert not (tmp_path / "never.pt").exists()
    b = finished(run("b", "resumed.pt", 0.0), tmp_path / "resumed.pt")
    a = finished(whole, tmp_path / "whole.pt")
    assert b["report"]["resumed_from"] >= 4 and b["report"]["steps"] == a["report"]["steps"] == 12
    for name, value in a["weights"].items():
        torch.testing.assert_close(b["weights"][name], value)


def test_a_non_finite_step_is_skipped_and_a_diverged_run_registers_nothing(settings, tmp_path, monkeypatch):
    # On an H200 a bf16 batch gave a NaN loss at SFT step ~24; stepping on it made every weight NaN.
    from tests.helpers.tiny import tiny_student
    from training.stages import sft as sft_module
    from training.stages.runs import DivergedError

    student, frames = tiny_student(), tiny_frames(len(ITEMS))
    real_loss, calls = sft_module.sft_loss, []

    def nan_on_second_step(*args):
        calls.append(1)
        loss = real_loss(*args)
        return loss * float("nan") if len(calls) == 2 else loss

    monkeypatch.setattr(sft_module, "sft_loss", nan_on_second_step)
    registered_student(settings, tmp_path)
    name = sft(settings, SFTConfig(**QUICK | {"batch_size": 1}), student=student, data=(ITEMS, frames))
    assert all(torch.isfinite(p).all() for p in student.parameters())
    with session_scope(settings.db_url) as s:
        metrics = registry.get(s, name).metrics
    assert metrics["steps"] == len(ITEMS) and metrics["skipped_steps"] == 1

    monkeypatch.setattr(sft_module, "sft_loss", lambda *args: real_loss(*args) * float("nan"))
    with pytest.raises(DivergedError, match="non-finite"):
        sft(settings, SFTConfig(**QUICK | {"batch_size": 1, "epochs": 3, "lr": 1e-3}), student=student,
            data=(ITEMS, frames))
    with session_scope(settings.db_url) as s:
        assert [v.name for v in registry.versions(s)] == ["align-tiny", name]


def test_the_stage_table_lists_baselines_teachers_and_the_newest_line_of_students(settings, tmp_path):
    from bench.qmsum import stage_systems
    from models.sources import llm_version

    with session_scope(settings.db_url) as s:
        parent = None
        for name, stage in (("align-1", "align"), ("sft-1", "sft"), ("kd-1", "kd"), ("dpo-1", "dpo"),
                            ("sft-2", "sft")):
            folder = tmp_path / name
            folder.mkdir()
            parent = registry.register(s, name=name, kind="student", stage=stage, checkpoint=folder,
                                       parent=parent if stage != "align" else None)
            if name == "dpo-1":
                parent = registry.get(s, "align-1")
        for name, llm in (("teacher-1", settings.llm_model), ("teacher-of-another-lm", "another-lm")):
            (tmp_path / name).mkdir()
            registry.register(s, name=name, kind="teacher", stage="teacher", checkpoint=tmp_path / name,
                              bases={"llm": llm_version(llm)})
    items = [EvalItem(f"i{n}", "q", "A: words", " ".join(["w"] * n)) for n in (10, 20, 70)]
    assert stage_systems(settings, items) == [
        "lead:20", "cascade:raw", "teacher-on-reference:raw", "cascade:teacher-1", "teacher-on-reference:teacher-1",
        "student:align-1", "student:sft-1", "student:kd-1", "student:dpo-1"]


def test_lead_is_the_first_words_the_meeting_says():
    from training.evaluate import lead

    item = EvalItem("i", "q", "Anna: One two three.\n[...]\nBen: Four five.", "ref")
    assert lead(item, 4) == "One two three. Four"


def test_a_teacher_with_another_tokenizer_is_refused(settings, tmp_path):
    from tests.helpers.tiny import WORDS, tiny_chat_lm, tiny_student
    from training.stages.teacher import TeacherError, load_teacher

    student = tiny_student()
    for name, words in (("same", WORDS), ("other", ["a different vocabulary altogether"])):
        lm, tokenizer = tiny_chat_lm(words)
        lm.save_pretrained(tmp_path / name)
        tokenizer.save_pretrained(tmp_path / name)
    assert load_teacher(settings, str(tmp_path / "same"), student_tokenizer=student.tokenizer).name
    with pytest.raises(TeacherError, match="another tokenizer"):
        load_teacher(settings, str(tmp_path / "other"), student_tokenizer=student.tokenizer)


def test_a_teacher_goes_on_from_its_parent_adapter_and_names_it(settings, tmp_path):
    from tests.helpers.tiny import WORDS, tiny_chat_lm
    from training.stages.teacher import TeacherConfig, TeacherError, finetune_teacher

    lm, tokenizer = tiny_chat_lm(WORDS)
    lm.save_pretrained(tmp_path / "lm")
    tokenizer.save_pretrained(tmp_path / "lm")
    quick = dict(model=str(tmp_path / "lm"), meetings=1, max_words=60, steps=1, batch_size=1, warmup_steps=1,
                 save_minutes=0.0)
    first = finetune_teacher(settings, TeacherConfig(lora_r=2, **quick))
    second = finetune_teacher(settings, TeacherConfig(lora_r=8, parent=first, **quick))
    with session_scope(settings.db_url) as s:
        child = registry.get(s, second)
        assert child.parent_id == registry.get(s, first).id
        adapter = json.loads((Path(child.checkpoint) / "adapter_config.json").read_text())
    assert adapter["r"] == 2  # the parent's adapter, trained further, not new rank-8 adapters
    with pytest.raises(TeacherError, match="adapts"):
        finetune_teacher(settings, TeacherConfig(**(quick | {"model": "smollm2-135m-instruct"}), parent=first))


def test_a_20_minute_recording_is_heard_in_pieces_and_the_pieces_merged(monkeypatch):
    from models.asr import Segment, Transcript
    from models.summarizer import StudentSummarizer
    from tests.helpers.tiny import tiny_student

    student = tiny_student().eval()
    heard, merged = [], []
    generate, chat = student.generate, student.chat
    monkeypatch.setattr(student, "generate", lambda audio, *a: heard.append(len(audio[0])) or generate(audio, *a))
    monkeypatch.setattr(student, "chat", lambda prompt, *a: merged.append(prompt) or chat(prompt, *a))
    audio = (0.1 * np.random.default_rng(0).standard_normal(20 * 60 * 16000)).astype(np.float32)
    transcript = Transcript([Segment(0.0, 1200.0, "the budget is approved.")], "en", 1.0, 1200.0, "test")
    summary = StudentSummarizer(student, "student:tiny").summarize(audio, transcript, "What about the budget?")
    assert heard == [300 * 16000] * 8  # 5-minute pieces, each well inside the LM's window: notes, then the answer
    assert len(merged) == 2 and "What about the budget?" in merged[1]  # the overview, then the pieces' answers
    assert len(summary.chapters) == 1  # the transcript's one segment lies in the first piece
    assert summary.raw and summary.system == "student"


def fit_a_line(tmp_path, cfg: LoopConfig, pause: float = 0.0) -> dict:
    """`fit` on a one-weight model whose every step takes `pause` seconds."""
    torch.manual_seed(0)
    model = torch.nn.Linear(1, 1, bias=False)

    def loss_fn(batch):
        time.sleep(pause)
        return (model.weight.sum() - 1.0) ** 2, {}

    return fit(Run(tmp_path, "line", {"pause": pause}, None, "d"), model, loss_fn, [1] * 8, cfg, "line")


def test_the_budget_is_steps_whatever_the_pace_and_the_schedule_decays_over_them(tmp_path):
    cfg = LoopConfig(steps=6, batch_size=2, warmup_steps=1, save_minutes=0.0)
    fast, slow = fit_a_line(tmp_path / "fast", cfg), fit_a_line(tmp_path / "slow", cfg, pause=0.2)
    assert fast["steps"] == slow["steps"] == fast["planned_steps"] == 6 and not fast["capped"] and not slow["capped"]
    assert [row[1] for row in fast["curve"]] == [row[1] for row in slow["curve"]]  # the same model, later
    assert lr_at(6, 6, cfg) == pytest.approx(cfg.lr * 0.1) and slow["steps_per_minute"] < fast["steps_per_minute"]
    assert fit_a_line(tmp_path / "epochs", LoopConfig(batch_size=2, epochs=2, warmup_steps=1))["steps"] == 8


def test_a_minutes_cap_stops_a_step_budget_and_the_version_says_so(settings, tmp_path):
    report = fit_a_line(tmp_path, LoopConfig(steps=1000, minutes=0.01, batch_size=2, warmup_steps=1), pause=0.1)
    assert report["capped"] and 0 < report["steps"] < report["planned_steps"] == 1000
    student = registered_student(settings, tmp_path)
    name = sft(settings, SFTConfig(steps=500, minutes=0.01, batch_size=2, warmup_steps=1, save_minutes=0.0),
               student=student, data=(ITEMS, tiny_frames(len(ITEMS))))
    with session_scope(settings.db_url) as session:
        metrics = registry.get(session, name).metrics
    assert metrics["capped"] is True and metrics["steps"] < metrics["planned_steps"] == 500
    assert metrics["steps_per_minute"] > 0

