"""The generated training meetings: apart from the facts benchmark, varied, and with notes true to their facts."""

from __future__ import annotations

import re

from bench.facts import meetings as benchmark_meetings
from models.grounding import sentences
from training.data.meetings import NOTES_QUERY, make_meeting, meeting_items
from training.stages.sft import SFTConfig
from training.stages.teacher import TeacherConfig

TRAINING = [make_meeting(i) for i in range(1000)] + [make_meeting(i, long=True) for i in range(50)]


def said(meeting) -> set[str]:
    """Every sentence of the meeting, lower case, words only."""
    return {" ".join(re.findall(r"[a-z0-9']+", s.lower())) for _, text in meeting.turns for s in sentences(text)}


def test_no_benchmark_meeting_and_no_benchmark_sentence_is_in_the_training_meetings():
    benchmark = benchmark_meetings()
    heard_in_benchmark = set().union(*(said(m) for m in benchmark))
    assert not heard_in_benchmark & set().union(*(said(m) for m in TRAINING))
    assert not {m.id for m in benchmark} & {m.id for m in TRAINING}
    assert not {p for m in benchmark for p in m.speakers} & {p for m in TRAINING for p in m.speakers}
    named = lambda ms: {f.value for m in ms for f in m.facts if f.kind in ("owner", "decision")}  # noqa: E731
    assert not named(benchmark) & named(TRAINING)  # other people and other vendors
    assert not {f.subject for m in benchmark for f in m.facts} & {f.subject for m in TRAINING for f in m.facts}


def test_a_long_meeting_has_more_than_six_decisions_and_action_items_and_its_id_finds_it_again():
    from training.data.items import EvalItem
    from training.data.meetings import meeting_of

    long = [m for m in TRAINING if m.long]
    assert all(sum(f.kind == "owner" for f in m.facts) >= 8 and len(m.facts) >= 26 for m in long)
    assert all(len(m.facts) <= 13 for m in TRAINING[:1000]) and 4 <= sum(m.minutes for m in long) / len(long) <= 7
    assert meeting_of(EvalItem(f"{long[3].id}-notes", "", "", "")) == long[3]


def test_meetings_have_small_talk_corrections_facts_across_two_turns_and_unnamed_speakers():
    assert sum(any(f.superseded for f in m.facts) for m in TRAINING) > 300
    small_talk = ("weekend", "raining", "coffee", "train was slow")
    assert sum(any(w in text for _, text in m.turns[:3] for w in small_talk) for m in TRAINING) == len(TRAINING)
    across = 0
    for m in TRAINING:
        for f in m.facts:
            if f.kind == "deadline":
                asked = next(i for i, (_, t) in enumerate(m.turns) if f.subject in t and "when" in t.lower())
                across += f.subject not in m.turns[asked + 1][1] and f.value.title() in m.turns[asked + 1][1]
    assert across > 300
    own_words = lambda m, who: {w for speaker, t in m.turns if speaker == who for w in re.findall(r"\w+", t)}  # noqa: E731
    unnamed = sum(any(who not in own_words(m, who) for who in m.speakers) for m in TRAINING)
    assert unnamed == len(TRAINING)  # somebody never says their own name in every meeting


def test_the_notes_state_every_final_value_and_no_corrected_one():
    for m in TRAINING:
        notes = m.notes.lower().replace(",", "")
        assert notes.startswith("the meeting settled") and "decisions:" in notes and "action items:" in notes
        for f in m.facts:
            assert f.value in notes, (m.id, f)
            if f.superseded and f.superseded not in {g.value for g in m.facts}:  # (it may be another item's)
                assert not re.search(rf"\b{f.superseded}\b", notes), (m.id, f)


def test_the_teacher_and_sft_learn_from_the_generated_meetings_too():
    assert TeacherConfig().meetings > 0 and SFTConfig().meetings > 0
    items = meeting_items(50)
    assert len(items) == 100 and len({i.id for i in items}) == 100
    assert all(len(i.spoken_text.split()) <= SFTConfig().max_words and i.reference for i in items)
    notes = [i for i in items if i.query == NOTES_QUERY]
    assert len(notes) == 50 and all("Action items (owner: task, due date):" in i.reference for i in notes)
    assert all(i.reference in i_notes.reference for i, i_notes in zip(items[1::2], items[::2]))  # answers from notes


def test_an_amount_in_pounds_or_euros_counts_as_right_as_one_in_dollars():
    """The DPO reward on generated meetings counts facts with `fact_score`: "£62,000" (after the
    normalizer) states 62000 as "$62,000" does."""
    import dataclasses

    from training.data.meetings import fact_score

    amounts = [(m, f) for m in TRAINING[:200] for f in m.facts if f.kind == "amount"]
    assert {f.unit for _, f in amounts} == {"dollars", "pounds", "euros"}
    for m, f in amounts:
        assert fact_score(m.notes, dataclasses.replace(m, facts=[f])) == (1, 0), (m.id, f)


def test_a_notes_teacher_learns_the_served_prompts_and_the_notes_in_the_form_it_serves():
    """The 1.5B notes LM, fine-tuned, serves the cascade's notes path: it must learn on the prompt it
    will read there ("Speaker N:" lines, the notes prompt) and write notes the parser reads back."""
    from models.asr import Segment
    from models.notes import answer_prompt, from_model, notes_prompt
    from training.stages.teacher import Teacher, teacher_answer, teacher_reads

    item = meeting_items(4)[2]
    teacher = Teacher(lm=None, tokenizer=None, name="qwen", notes=True)
    read = teacher_reads(teacher, item, heard=True)
    labels = [line.partition(": ")[0] for line in read.splitlines()]
    assert labels[0] == "Speaker 1" and set(labels) == {f"Speaker {k + 1}" for k in range(len(set(labels)))}
    assert all(a != b for a, b in zip(labels, labels[1:]))  # one line per turn, as the diarizer gives them

    written = teacher_answer(teacher, item, heard=True)
    assert written == item.reference and written.splitlines()[-1].startswith("Summary: ")
    assert "Decisions:" in notes_prompt("x")[-1]["content"]
    transcript = [Segment(0.0, 1.0, text) for _, text in item.turns]
    decisions, actions, dropped = from_model(written, transcript, item.spoken_text)
    stated_owners = [line.split(":")[0][2:] for line in item.reference.splitlines()[item.reference.splitlines().index(
        "Action items (owner: task, due date):") + 1:-1]]
    assert [a.owner for a in actions] == stated_owners and all(a.due for a in actions)
    assert len(decisions) == item.reference.count("\n- ") - len(stated_owners)

    from tests.helpers.tiny import tiny_teacher

    tiny = tiny_teacher()
    chat = lambda messages: tiny.tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=True,  # noqa: E731
                                                                return_dict=True)["input_ids"]
    assert tiny.prompt_ids(read, NOTES_QUERY, notes=True) == chat(notes_prompt(read))
    assert tiny.prompt_ids(read, "Who owns the permit?", notes=True) == chat(answer_prompt(read, "Who owns the permit?"))
    assert tiny.prompt_ids(read, NOTES_QUERY) != chat(notes_prompt(read))  # KD scores on the reading prompt

    smol = Teacher(lm=None, tokenizer=None, name="smol", notes=False)
    assert teacher_reads(smol, item, heard=True) == item.spoken_text
    assert teacher_answer(smol, item, heard=True) == item.reference
