"""KD and DPO on generated meetings: their notes are sampled as served; their known facts pick DPO's pairs."""

from __future__ import annotations

from models.summarizer import NOTES_NO_REPEAT_NGRAM, NOTES_TOKENS
from tests.helpers.tiny import tiny_frames, tiny_student
from training.data.meetings import meeting_items, meeting_of
from training.stages.dpo import DPOConfig, auto_pairs, parent_samples
from training.stages.kd import KDConfig, sample


def decodings_used(student, monkeypatch) -> list:
    """The decodings the student generates with, in order (its generation still runs)."""
    used, generate = [], student.generate_from_embeddings
    monkeypatch.setattr(student, "generate_from_embeddings",
                        lambda embeds, prompts, decoding, **kw: used.append(decoding) or generate(embeds, prompts,
                                                                                                  decoding, **kw))
    return used


def test_the_chain_pairs_generated_meetings_and_samples_their_notes_as_they_are_served(tmp_path, monkeypatch):
    """The facts rule (right beats absent, absent beats wrong) needs items whose facts are known: the
    default DPO run samples generated meetings too. Their notes get the served notes' room and n-gram
    ban; a 96-token sample would cut the notes before their action items."""
    assert DPOConfig().meetings > 0
    student = tiny_student().eval()
    items = meeting_items(1)  # the meeting's notes, then its focus question
    used = decodings_used(student, monkeypatch)
    cfg = DPOConfig(samples=2, max_new_tokens=6)
    samples = parent_samples(student, items, tiny_frames(2), cfg, tmp_path / "samples.json")
    assert [len(s) for s in samples] == [2, 2]
    notes, answer = used
    assert (notes.max_new_tokens, notes.no_repeat_ngram_size) == (NOTES_TOKENS, NOTES_NO_REPEAT_NGRAM)
    assert (answer.max_new_tokens, answer.no_repeat_ngram_size) == (6, 0)
    assert notes.do_sample and notes.temperature == cfg.sample_temperature


def test_notes_that_state_the_facts_are_chosen_and_notes_with_a_corrected_value_never_are():
    """Their headings ("Decisions:", "Action items (...):") are no invented names: before they were
    left out of the check, every notes sample counted as stating a value the transcript lacks."""
    item = meeting_items(1)[0]
    meeting = meeting_of(item)
    fact = next(f for f in meeting.facts if f.superseded)
    right = item.reference
    wrong = right.replace(fact.value.title(), fact.superseded.title()).replace(fact.value, fact.superseded)
    assert right != wrong
    vague = "Decisions:\n- The meeting went well.\nSummary: The team met."
    (pair,) = auto_pairs([[wrong, vague, right]], [item], DPOConfig())
    assert (pair.chosen, pair.rejected) == (right, vague)  # every fact right against none stated
    (pair,) = auto_pairs([[wrong, right]], [item], DPOConfig())
    assert (pair.chosen, pair.rejected) == (right, wrong)
    assert auto_pairs([[wrong, vague]], [item], DPOConfig()) == []  # a wrong value is never chosen


def test_kd_samples_a_batch_with_a_notes_prompt_as_notes_are_served(monkeypatch):
    """KD learns the notes token by token only if the student's samples of them are whole notes."""
    from models.notes import NOTES_QUERY
    from models.student import instruction

    assert KDConfig().meetings > 0
    student = tiny_student().eval()
    used = decodings_used(student, monkeypatch)
    embeds = [student.projector(f) for f in tiny_frames(2)]
    cfg = KDConfig(max_new_tokens=4)
    sample(student, embeds, [instruction(NOTES_QUERY), instruction("Who pays?")], cfg)
    sample(student, embeds, [instruction("Who pays?"), instruction("When?")], cfg)
    assert [(d.max_new_tokens, d.no_repeat_ngram_size) for d in used] == [(NOTES_TOKENS, NOTES_NO_REPEAT_NGRAM), (4, 0)]
