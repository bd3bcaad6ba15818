from models.grounding import keep_supported, names, numbers, sentences, unsupported_terms

SOURCE = ("Sarah proposed that we spend $40,000 on the redesign. We agreed to approve it before the end of "
          "March. So we decided to move the launch to the 15th of May. Tom will lead the interviews.")


def test_numbers_are_normalised():
    assert numbers("We spend $40,000 by the 15th, 2.5% more, 3 people.") == {"40000", "15", "2.5", "3"}


def test_names_skip_function_words_but_not_sentence_initial_names():
    assert names("The plan is good. Jennifer met Tom in Paris. Overall it went well.") == {"jennifer", "tom", "paris"}


def test_invented_number_and_name_are_flagged():
    summary = "Sarah proposed $45,000 for the redesign, and Jennifer approved it in 2024."
    assert unsupported_terms(summary, SOURCE) == ["2024", "45000", "jennifer"]


def test_supported_summary_is_kept_whole():
    summary = "Sarah proposed $40,000 for the redesign. The launch moves to the 15th of May."
    assert unsupported_terms(summary, SOURCE) == []
    assert keep_supported(summary, SOURCE) == (summary, [])


def test_only_sentences_with_unsupported_terms_are_dropped():
    summary = "Tom will lead the interviews. The launch moves to June 3. The budget was approved."
    kept, dropped = keep_supported(summary, SOURCE)
    assert kept == "Tom will lead the interviews. The budget was approved."
    assert dropped == ["The launch moves to June 3."]


def test_sentence_split_keeps_decimals_and_amounts():
    assert sentences("It costs $2.50 each. Then we stop.") == ["It costs $2.50 each.", "Then we stop."]


def test_sentence_split_knows_abbreviations():
    text = "Mr. Smith met Dr. Jones at 3 p.m. on Monday. They agreed, e.g. on the budget. Is it final? Yes."
    assert sentences(text) == ["Mr. Smith met Dr. Jones at 3 p.m. on Monday.", "They agreed, e.g. on the budget.",
                               "Is it final?", "Yes."]


def test_grounding_drops_a_whole_sentence_never_a_lone_title():
    kept, dropped = keep_supported("Mr. Brown will send the report. The budget is approved.",
                                   "the budget is approved and the report goes out")
    assert dropped == ["Mr. Brown will send the report."] and kept == "The budget is approved."


def test_an_amount_in_thousands_is_the_same_number_as_in_digits():
    from models.grounding import numbers, unsupported_terms

    assert numbers("36 thousand pounds, 2.5 million, $40,000, $12k") == {"36000", "2500000", "40000", "12000"}
    assert unsupported_terms("It was approved at 36 thousand pounds.", "The quote is 36,000 pounds.") == []


def test_numbers_the_transcript_spells_out_support_the_same_numbers_in_digits():
    """ASR writes amounts and dates in words as often as in digits: "6,500 euros" is what was said."""
    said = "Seven thousand five hundred euros. Sorry, six thousand five hundred. It moved to the fifth of May."
    assert unsupported_terms("The ad campaign is 6,500 euros, and the preview is on May 5th.", said) == []
    assert unsupported_terms("The ad campaign is 6,000 euros.", said) == ["6000"]


def test_a_value_the_source_took_back_is_unsupported_unless_its_replacement_is_said_too():
    said = ("By Friday, I think. Actually, make that Thursday, not Friday. It's the first of June. "
            "You're right, June twentieth now, not the first. The demo is due Friday too? No.")
    assert unsupported_terms("The fix is due Thursday.", said) == []
    assert unsupported_terms("The launch is on June 1st.", said) == ["1"]
    assert unsupported_terms("The launch moved from June 1st to June 20th.", said) == []
    # Friday is said twice apart from its correction: another task may be due Friday
    assert unsupported_terms("The fix is due Friday.", said) == []
    assert unsupported_terms("The fix is due Friday.", "By Friday. Actually, make that Thursday, not Friday.") == [
        "friday"]
