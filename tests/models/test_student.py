"""The student on tiny random-weight parts built here: shapes, masks, trainable set, log-probs, checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.llm import Decoding
from models.student import (
    SAMPLE_RATE,
    Projector,
    Student,
    StudentError,
    autocast,
    cpu_has_bf16,
    instruction,
)
from tests.helpers.tiny import tiny_student


def noise(seconds: float, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(int(seconds * SAMPLE_RATE))).astype(np.float32)


@pytest.fixture(scope="module")
def student() -> Student:
    return tiny_student()


def test_projector_stacks_frames_and_pads_the_tail():
    projector = Projector(8, 4, 16, 12)
    assert projector(torch.randn(12, 8)).shape == (3, 12)
    assert projector(torch.randn(13, 8)).shape == (4, 12)


def test_projector_takes_the_float16_frames_training_keeps_as_their_float32_values():
    """Training keeps cached frames in float16 (training.data.frames) for half the memory."""
    projector, frames = Projector(8, 4, 16, 12), torch.randn(13, 8).half()
    assert torch.equal(projector(frames), projector(frames.float()))


def test_projector_output_starts_at_the_scale_it_is_given():
    out = Projector(8, 4, 16, 12, scale=0.1)(torch.randn(40, 8))
    assert out.pow(2).mean(-1).sqrt().tolist() == pytest.approx([0.1] * 10, rel=1e-2)


@pytest.mark.parametrize(("seconds", "frames"), [(1.0, 50), (7.3, 365), (35.0, 1750)])
def test_encoder_gives_50_frames_a_second_and_windows_long_audio(student, seconds, frames):
    assert student.encoder.encode(noise(seconds)).shape == (frames, 16)


def test_training_autocasts_to_bf16_on_a_cpu_only_where_it_has_bf16_units(student):
    with autocast("cpu"):
        assert torch.is_autocast_enabled("cpu") == cpu_has_bf16()
        product = torch.ones(2, 2) @ torch.ones(2, 2)
        frames = student.encoder.encode(noise(1.0))  # the log-mel front end stays fp32 (numpy) even so
    assert product.dtype == (torch.bfloat16 if cpu_has_bf16() else torch.float32)
    assert frames.shape == (50, 16) and torch.isfinite(frames).all()


def test_batch_left_pads_and_puts_the_audio_where_the_placeholder_was(student):
    audio = [student.audio_embeddings(noise(s)) for s in (1.0, 3.0)]  # 13 and 38 positions
    texts = [instruction(None), instruction("What about the budget?")]
    embeds, mask, ids = student.batch(audio, texts)
    assert [a.shape[0] for a in audio] == [13, 38]
    assert embeds.shape[:2] == mask.shape == ids.shape
    lengths = mask.sum(-1).tolist()
    assert lengths == [len(student.prompt_ids(t, a.shape[0])[0]) for t, a in zip(texts, audio)]
    for row, emb in enumerate(audio):
        assert mask[row, : mask.shape[1] - lengths[row]].sum() == 0  # padding on the left only
        placed = (embeds[row] - emb[0]).abs().sum(-1) < 1e-6
        start = int(placed.nonzero()[0])
        assert torch.allclose(embeds[row, start : start + emb.shape[0]], emb)


def test_audio_goes_where_the_placeholder_is_even_when_pad_is_the_end_of_turn_token():
    """SmolLM2's pad token is <|im_end|>, which the prompt also holds before the audio."""
    student = tiny_student()
    student.tokenizer.pad_token = student.tokenizer.eos_token
    student.placeholder_id = student.tokenizer.pad_token_id
    ids, first = student.prompt_ids(instruction(None), 5)
    assert student.placeholder_id in ids[:first]  # the trap: an end-of-turn before the audio
    assert ids[first : first + 5] == [student.placeholder_id] * 5
    audio = student.audio_embeddings(noise(0.5))  # 4 positions
    embeds, _, row = student.batch([audio], [instruction(None)])
    start = student.prompt_ids(instruction(None), audio.shape[0])[1]
    assert torch.equal(embeds[0, start : start + audio.shape[0]], audio)
    text_positions = torch.ones(row.shape[1], dtype=torch.bool)
    text_positions[start : start + audio.shape[0]] = False
    assert torch.equal(embeds[0, text_positions], student.lm.get_input_embeddings()(row[0, text_positions]))


def test_only_projector_and_lora_parameters_train(student):
    trainable = {name for name, p in student.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("projector.") or "lora_" in n for n in trainable)
    assert any("lora_" in n for n in trainable) and any(n.startswith("projector.") for n in trainable)


def test_continuation_logprobs_match_a_manual_computation_from_logits(student):
    audio = [student.audio_embeddings(noise(s, seed=i)) for i, s in enumerate((1.0, 2.0))]
    texts = [instruction(None), instruction("the budget")]
    conts = [student.tokenizer("the budget is approved")["input_ids"], student.tokenizer("user")["input_ids"]]
    values, mask = student.continuation_logprobs(audio, texts, conts)
    for row in range(2):  # each alone, unpadded, straight from the logits
        embeds, _, ids = student.batch([audio[row]], [texts[row]], [conts[row]])
        logp = torch.log_softmax(student.lm(inputs_embeds=embeds).logits[0], -1)
        n = len(conts[row])
        manual = [logp[ids.shape[1] - n - 1 + i, t] for i, t in enumerate(conts[row])]
        assert mask[row].sum() == n
        assert torch.allclose(values[row, -n:], torch.stack(manual), atol=1e-5)


@pytest.mark.parametrize("beams", [1, 3])
def test_generated_logprobs_are_the_models_own_scores(student, beams):
    audios = [noise(2.0), noise(3.5, seed=1)]  # two lengths: padding must not leak into the scores
    decoding = Decoding(max_new_tokens=6, repetition_penalty=1.0, num_beams=beams)
    outs = student.generate(audios, [instruction(None)] * 2, decoding)
    for audio, out in zip(audios, outs):
        assert 0 < len(out.token_ids) <= 6 and len(out.logprobs) == len(out.token_ids)
        values, _ = student.continuation_logprobs([student.audio_embeddings(audio)], [instruction(None)],
                                                  [out.token_ids])
        assert np.allclose(values[0].tolist(), out.logprobs, atol=1e-4)


def test_beam_candidates_come_grouped_by_input_best_first(student):
    embeds = [student.audio_embeddings(noise(2.0)), student.audio_embeddings(noise(3.0, seed=1))]
    decoding = Decoding(max_new_tokens=5, repetition_penalty=1.0, num_beams=3)
    best = student.generate_from_embeddings(embeds, [instruction(None)] * 2, decoding)
    beams = student.generate_from_embeddings(embeds, [instruction(None)] * 2, decoding, candidates=3)
    assert len(beams) == 6 and [beams[0].token_ids, beams[3].token_ids] == [b.token_ids for b in best]
    assert len({tuple(g.token_ids) for g in beams[:3]}) == 3


def test_sampling_with_a_seed_is_reproducible(student):
    sample = Decoding(max_new_tokens=8, do_sample=True, temperature=1.0, seed=3)
    first, again = (student.generate([noise(1.0)], [instruction(None)], sample)[0] for _ in range(2))
    assert first.token_ids == again.token_ids


def test_checkpoint_round_trip_gives_identical_outputs(tmp_path):
    trained = tiny_student()
    with torch.no_grad():  # as if trained: projector and adapters away from their initial values
        for p in trained.trainable_parameters():
            p.add_(0.05 * torch.randn_like(p))
    checkpoint = trained.save(tmp_path / "ckpt")
    assert sorted(p.name for p in checkpoint.iterdir()) == ["adapter", "config.json", "manifest.json",
                                                            "projector.safetensors"]
    restored = tiny_student().load_weights(checkpoint)
    audio = [trained.audio_embeddings(noise(1.5))]
    cont = [trained.tokenizer("the budget is approved")["input_ids"]]
    before = trained.continuation_logprobs(audio, [instruction(None)], cont)[0]
    after = restored.continuation_logprobs([restored.audio_embeddings(noise(1.5))], [instruction(None)], cont)[0]
    assert torch.equal(before, after)
    fresh = tiny_student().continuation_logprobs([tiny_student().audio_embeddings(noise(1.5))], [instruction(None)], cont)[0]
    assert not torch.equal(before, fresh)  # the round trip carried the trained weights, not the seed


def test_a_checkpoint_of_other_base_weights_is_refused(tmp_path):
    checkpoint = tiny_student().save(tmp_path / "ckpt")
    other = tiny_student()
    other.bases = {"encoder": "tiny", "llm": "another"}
    with pytest.raises(StudentError, match="trained on other base weights"):
        other.load_weights(checkpoint)


def test_the_student_writes_grounded_notes_and_answers_a_question_from_the_audio(student, monkeypatch):
    """Asked for nothing, the student writes the notes it learned on the generated meetings (NOTES_QUERY,
    the notes' n-gram ban); the items the transcript does not support are dropped, as the cascade's are.
    A focus question is answered from the audio too, and its answer is grounded."""
    from models.asr import Segment, Transcript
    from models.notes import NOTES_QUERY
    from models.student import Generated, instruction
    from models.summarizer import NOTES_NO_REPEAT_NGRAM, StudentSummarizer

    notes = ("Decisions:\n- We approved the marketing budget.\n- Sarah pays 900 dollars.\n"
             "Action items (owner: task, due date):\n- Tom: call Maria about the remote control design, due tomorrow.\n"
             "Summary: We approved the marketing budget. We approved the marketing budget.")
    asked = []

    def generate(audio, texts, decoding):
        asked.append((texts[0], decoding.no_repeat_ngram_size))
        return [Generated(notes if texts[0] == instruction(NOTES_QUERY) else "Tom calls Maria. Tom pays 900 dollars.",
                          [1, 2], [-0.1, -0.2])]

    monkeypatch.setattr(student, "generate", generate)
    transcript = Transcript([Segment(0.0, 3.0, "We approved the marketing budget for the new remote control."),
                             Segment(3.0, 6.0, "Tom will call Maria about the remote control design tomorrow.")],
                            "en", 1.0, 6.0, "asr")
    summary = StudentSummarizer(student, "student:test", n_key_points=2).summarize(noise(1.0), transcript, " ")
    assert asked == [(instruction(NOTES_QUERY), NOTES_NO_REPEAT_NGRAM)]
    assert summary.text == summary.notes["overview"] == "We approved the marketing budget."  # said once
    assert [(d["text"], d["start"]) for d in summary.notes["decisions"]] == [("We approved the marketing budget.", 0.0)]
    assert [(a["owner"], a["due"], a["start"]) for a in summary.notes["action_items"]] == [("Tom", "tomorrow", 3.0)]
    assert summary.notes["dropped"] == ["Sarah pays 900 dollars."] and summary.raw == notes
    assert (summary.system, summary.model_version, summary.query) == ("student", "student:test", None)
    assert [p["start"] for p in summary.key_points] == [0.0, 3.0]

    answered = StudentSummarizer(student, "student:test").summarize(noise(1.0), transcript, "Who calls Maria?")
    assert [a for a, _ in asked[1:]] == [instruction(NOTES_QUERY), instruction("Who calls Maria?")]
    assert answered.text == "Tom calls Maria." and "Tom pays 900 dollars." in answered.dropped
    assert answered.notes["action_items"] == summary.notes["action_items"]
