"""Each metric on hand-made cases whose right answer is known."""

import pytest

from training.metrics import hallucination, normalize, rouge, values, word_error_rate

SOURCE = ("Sarah proposed that we spend forty thousand dollars on the redesign, and we agreed. "
          "Tom will lead the interviews for two backend engineers starting next Monday.")


def test_a_faithful_paraphrase_with_numbers_in_digits_is_fully_supported():
    h = hallucination("Sarah proposed spending $40,000 on the redesign; Tom leads interviews for 2 engineers.", SOURCE)
    assert h.rate == 0.0 and h.unsupported == ()


def test_an_invented_number_and_name_are_flagged_names_first():
    h = hallucination("Sarah proposed spending $55,000 on the redesign, and Peter approved.", SOURCE)
    assert h.unsupported == ("peter", "55000", "approv")
    # units: sarah, propos, spend, 55000, redesign, peter, approv -> "proposed" is a meta word
    assert h.units == 6 and h.rate == pytest.approx(3 / 6)


def test_meta_words_and_function_words_do_not_count():
    h = hallucination("The team discussed and mentioned that Sarah suggested the redesign.", SOURCE)
    assert h.rate == 0.0 and h.units == 2  # sarah, redesign


def test_empty_summary_has_no_units():
    assert hallucination("", SOURCE) == hallucination("The, and of.", SOURCE)
    assert hallucination("", SOURCE).rate == 0.0


def test_rouge_takes_the_best_reference_per_metric():
    scores = rouge("the launch moves to may", ["the launch moves to may", "nothing alike"])
    assert scores == {"rouge1": 1.0, "rouge2": 1.0, "rougeL": 1.0}
    partial = rouge("the launch moves to june", ["the launch moves to may"])
    assert partial["rouge1"] == pytest.approx(0.8) and partial["rouge2"] == pytest.approx(0.75)


def test_rouge_stems_words():
    assert rouge("interviews planned", ["interview plans"])["rouge1"] == 1.0


def test_whisper_normalizer_forgives_spelling_of_numbers_and_titles():
    assert normalize("Mr. Smith paid ten dollars!") == normalize("mister smith paid $10")
    assert word_error_rate(["Mr. Smith paid ten dollars."], ["mister smith paid 10 dollars"]) == 0.0


def test_wer_is_pooled_over_the_corpus():
    # 1 substitution in 4 words + 1 deletion in 2 words = 2 errors / 6 words
    assert word_error_rate(["the cat sat down", "big dog"], ["the cat sat town", "big"]) == pytest.approx(2 / 6)


def test_the_headings_of_notes_are_not_counted_as_invented_words_or_names():
    notes = ("Decisions:\n- The budget is 40 dollars.\nAction items (owner: task, due date):\n"
             "- Maria: the report, due Friday.\nSummary: Maria does the report.")
    source = "Maria said the budget is 40 dollars and the report is due Friday."
    assert hallucination(notes, source).rate == 0.0
    assert values(notes) == {"40", "maria", "friday"}
    assert hallucination("Action items: Tokyo.", source).unsupported == ("tokyo",)
