"""Alignment pieces alone: the loss, the schedule, the texts and voices, and that a few steps learn."""

from __future__ import annotations

import random

import pytest
import torch

from models.student import Generated
from tests.helpers.runs import finished, kill_once_saved, start
from tests.helpers.tiny import tiny_student
from training.data.items import EvalItem
from training.data.speech import VOICES
from training.data.utterances import Utterance, clean_sentences, passages, utterances
from training.stages.align import AlignConfig, TokenCTC, rescore, token_ids, train_step
from training.stages.runs import length_batches, lr_at


def test_learning_rate_warms_up_then_decays_to_a_tenth():
    cfg = AlignConfig(lr=1e-3, warmup_steps=10)
    assert lr_at(0, 100, cfg) == pytest.approx(1e-4)
    assert lr_at(9, 100, cfg) == pytest.approx(1e-3)
    assert lr_at(100, 100, cfg) == pytest.approx(1e-4)
    assert lr_at(50, 100, cfg) < lr_at(20, 100, cfg)


def test_length_batches_cover_every_example_once_and_group_similar_lengths():
    rng = random.Random(0)
    lengths = [rng.randrange(20, 400) for _ in range(1000)]
    batches = length_batches(lengths, 8, random.Random(1))
    assert sorted(i for b in batches for i in b) == list(range(1000))
    assert all(len(b) == 8 for b in batches)
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches) / len(batches)
    assert spread < 40  # random batches of 8 spread over ~300 frames
    assert length_batches(lengths, 8, random.Random(1)) == batches
    assert length_batches(lengths, 8, random.Random(2)) != batches


def test_clean_sentences_drop_fillers_short_and_duplicate_ones():
    item = EvalItem("x", "q", "A: Um so we uh need a cheaper remote control for the market. Yeah.\n"
                    "B: We need a cheaper remote control for the market. 1 2 3 4 5 6 7 8", "r")
    assert clean_sentences([item]) == ["So we need a cheaper remote control for the market.",
                                       "We need a cheaper remote control for the market."]


def test_passages_join_short_sentences_cut_long_ones_and_leave_out_test_texts():
    words = [f"word{chr(97 + i)}" for i in range(25)]  # one sentence of 25 words: pieces of 13 and 12
    item = EvalItem("x", "q", "A: Yeah. Okay. Um so the remote needs a cheaper chip. Right.\n"
                    f"B: {' '.join(words)}. The test sentence is never heard in training. The end is near here now.\n"
                    "A: Yeah. Okay. Um so the remote needs a cheaper chip. Right.", "r")
    got = passages([item], min_words=4, max_words=15, exclude={"the test sentence is never heard in training."})
    assert got == ["Yeah. Okay. So the remote needs a cheaper chip. Right.",  # one speaker's turn, fillers gone
                   "W" + " ".join(words[:13])[1:], " ".join(words[13:]).capitalize() + ".",
                   "The end is near here now."]  # the excluded sentence split the turn; the repeat is gone
    assert all(len(p.split()) <= 15 for p in got)


def test_utterances_cover_every_text_before_repeating_with_varied_voices():
    texts = [f"sentence number {i} is here" for i in range(5)]
    utts = utterances(texts, 12, seed=0)
    assert sorted(u.text for u in utts[:5]) == sorted(texts)
    assert all((u.engine, u.voice, u.speed) in VOICES for u in utts)
    assert len({(u.engine, u.voice, u.speed) for u in utts}) > 3
    assert Utterance("a", "piper", None, 1.0).key != Utterance("a", "piper", None, 1.2).key


def test_a_few_steps_on_one_example_lower_its_loss_through_projector_and_lora():
    student = tiny_student()
    student.train()
    frames = [torch.randn(60, 16)]
    params = student.trainable_parameters()
    before = {n: p.detach().clone() for n, p in student.named_parameters() if p.requires_grad}
    optimizer = torch.optim.AdamW(params, lr=3e-2)
    losses = []
    for _ in range(25):
        loss, _ = train_step(student, frames, ["the budget is approved"])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.25 and losses[-1] == min(losses)
    changed = {n for n, p in student.named_parameters() if p.requires_grad and not torch.equal(p, before[n])}
    assert any(n.startswith("projector.") for n in changed) and any("lora_B" in n for n in changed)


def test_ctc_pre_alignment_teaches_the_projector_to_spell_the_tokens():
    student = tiny_student()
    frames = [torch.randn(60, 16), torch.randn(48, 16)]
    ids = token_ids(student, ["the budget is approved", "user"])
    ctc = TokenCTC(student.lm.get_input_embeddings().weight, [t for row in ids for t in row])
    assert ctc.blank_id == len(set(ids[0] + ids[1]))
    params = list(student.projector.parameters()) + list(ctc.parameters())
    optimizer = torch.optim.AdamW(params, lr=1e-2)
    for _ in range(150):
        loss = ctc.loss([student.projector(f) for f in frames], ids)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert [ctc.greedy(student.projector(f)) for f in frames] == ids


def test_ctc_scores_audio_too_short_for_its_tokens_as_zero_not_infinity():
    student = tiny_student()
    ids = token_ids(student, ["the budget is approved"])
    ctc = TokenCTC(student.lm.get_input_embeddings().weight, ids[0])
    assert ctc.loss([student.projector(torch.randn(4, 16))], ids).item() == 0.0  # 1 position, 4 tokens


def test_ctc_loglik_scores_transcripts_and_the_full_vocabulary_keeps_their_ranking():
    student = tiny_student()
    embeddings = student.lm.get_input_embeddings().weight
    full, short = token_ids(student, ["the budget is approved", "the budget"])
    ctc = TokenCTC(embeddings, full)
    with torch.no_grad():
        ctc.blank.normal_()
        projected = student.projector(torch.randn(60, 16))
        narrow = ctc.loglik(projected, [full, short])
        assert torch.allclose(narrow[0], -ctc.loss([projected], [full]) * len(full))
        wide = ctc.widened(embeddings).loglik(projected, [full, short])
        assert (wide < narrow).all()  # more classes share each frame's probability...
        assert torch.allclose(wide[0] - wide[1], narrow[0] - narrow[1], atol=1e-4)  # ...alike for all transcripts
        assert ctc.loglik(student.projector(torch.randn(4, 16)), [full])[0] == float("-inf")  # 1 position, 4 tokens


def test_rescoring_follows_the_lm_alone_at_weight_zero_and_the_ctc_score_when_it_weighs_more():
    student = tiny_student()
    a, b = token_ids(student, ["the budget is approved", "the budget"])
    ctc = TokenCTC(student.lm.get_input_embeddings().weight, a)
    with torch.no_grad():
        projected = student.projector(torch.randn(60, 16))
    scores = ctc.loglik(projected, [a, b])
    eos = student.tokenizer.eos_token_id
    ctc_best, ctc_worst = (("A", a), ("B", b)) if scores[0] > scores[1] else (("B", b), ("A", a))
    beams = [Generated(ctc_worst[0], ctc_worst[1] + [eos], [-0.5, -0.5]),  # the LM's favourite
             Generated(ctc_best[0], ctc_best[1] + [eos], [-1.0, -1.0])]
    assert rescore(student, ctc, projected, beams, weight=0.0) == ctc_worst[0]
    assert rescore(student, ctc, projected, beams, weight=10 / abs(float(scores[0] - scores[1]))) == ctc_best[0]


ALIGN_RUN = """
import sys, time, torch
from pathlib import Path
sys.path.insert(0, {root!r})
from storage.settings import load_settings
from tests.helpers.tiny import tiny_student
from training.stages import align as stage
from training.stages.align import AlignConfig, AlignData

step = stage.train_step
def paced_step(*args, **kwargs):
    time.sleep({pause})
    return step(*args, **kwargs)
stage.train_step = paced_step
g = torch.Generator().manual_seed(0)
texts = ["the budget is approved", "user", "the audio is the budget", "approved"]
data = AlignData([torch.randn(40 + 8 * i, 16, generator=g) for i in range(4)], texts,
                 [torch.randn(48, 16, generator=g)], ["the budget is approved"])
cfg = AlignConfig(items=4, held_out=1, steps=12, ctc_steps=4, batch_size=1, ctc_batch_size=2, warmup_steps=1,
                  save_minutes=0.0, beams=2)
student = tiny_student()
report = stage.align(load_settings(env={{}}, data_dir=Path({data!r})), cfg, student=student, data=data)
torch.save({{"weights": {{n: p for n, p in student.named_parameters() if p.requires_grad}}, "report": report}},
           {out!r})
"""


@pytest.mark.slow
def test_alignment_killed_with_sigkill_resumes_on_the_shared_loop_and_ends_as_an_unbroken_run(tmp_path):
    run = lambda data, out, pause: start(ALIGN_RUN, data=str(tmp_path / data), out=str(tmp_path / out), pause=pause)  # noqa: E731
    whole, killed = run("a", "whole.pt", 0.0), run("b", "never.pt", 0.5)
    kill_once_saved(killed, tmp_path / "b" / "runs", lambda state: state["stage"] == "align" and state["step"] >= 3)
    assert not (tmp_path / "never.pt").exists()
    b = finished(run("b", "resumed.pt", 0.0), tmp_path / "resumed.pt")
    a = finished(whole, tmp_path / "whole.pt")
    assert b["report"]["resumed_from"] >= 3 and b["report"]["steps"] == a["report"]["steps"] == 12
    assert a["report"]["ctc_steps"] == b["report"]["ctc_steps"] == 4
    for name, value in a["weights"].items():
        torch.testing.assert_close(b["weights"][name], value)
    assert not list((tmp_path / "b" / "runs").glob("*/state.pt"))  # both phases closed when the version registered
    assert (tmp_path / "b" / "students" / b["report"]["version"] / "align.json").exists()
