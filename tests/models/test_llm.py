"""The reply's own n-grams may not repeat; the prompt's may be quoted."""

from __future__ import annotations

import torch

from models.llm import NoRepeatInReply


def banned(ids: list[int], prompt_length: int, size: int = 3) -> set[int]:
    scores = NoRepeatInReply(size, prompt_length)(torch.tensor([ids]), torch.zeros(1, 10))
    return {i for i, s in enumerate(scores[0].tolist()) if s == -float("inf")}


def test_a_reply_may_quote_the_prompt_word_for_word():
    assert banned([1, 2, 3, 4, 1, 2], prompt_length=4) == set()  # "1 2 3" is in the prompt: 3 may follow


def test_a_reply_may_not_say_its_own_n_gram_twice():
    assert banned([9, 9, 1, 2, 3, 5, 1, 2], prompt_length=2) == {3}
    assert banned([9, 9, 1, 2, 3, 5, 1, 2], prompt_length=2, size=4) == set()  # "5 1 2" is new


def test_each_row_of_a_batch_is_checked_alone():
    scores = NoRepeatInReply(2, 0)(torch.tensor([[1, 2, 1], [3, 4, 3]]), torch.zeros(2, 10))
    assert scores[0, 2] == -float("inf") and scores[1, 4] == -float("inf") and scores[0, 4] == 0
