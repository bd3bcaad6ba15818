"""A text LLM behind a chat interface: the cascade summarizer now, the teacher and judge later."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from transformers import LogitsProcessor, LogitsProcessorList

from models.sources import ModelSource


class NoRepeatInReply(LogitsProcessor):
    """Forbids repeating an n-gram of the reply itself. transformers' `no_repeat_ngram_size` also counts
    the prompt's n-grams, so a chat model could not quote four words of the transcript in a row:
    "40,000 dollars for the" came out as "40,0 00"."""

    def __init__(self, size: int, prompt_length: int):
        self.size, self.prompt_length = size, prompt_length

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        for row, reply in enumerate(input_ids[:, self.prompt_length :].tolist()):
            if len(reply) < self.size:
                continue
            prefix = reply[len(reply) - self.size + 1 :]
            banned = [reply[i + self.size - 1] for i in range(len(reply) - self.size + 1)
                      if reply[i : i + self.size - 1] == prefix]
            scores[row, banned] = -float("inf")
        return scores


@dataclass(frozen=True)
class Decoding:
    """How to decode. Greedy is reproducible; sampling (with a seed) gives alternative candidates."""

    max_new_tokens: int = 160
    do_sample: bool = False
    temperature: float = 0.7
    top_p: float = 0.95
    repetition_penalty: float = 1.1
    no_repeat_ngram_size: int = 0  # > 0 forbids repeating any n-gram: stops loops without penalizing words
    num_beams: int = 1  # > 1: beam search, the likeliest whole sequence rather than the likeliest next token
    seed: int | None = None

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class ChatLM:
    model: torch.nn.Module
    tokenizer: object
    version: str
    device: str = field(default="cpu")

    @classmethod
    def load(cls, source: ModelSource, device: str = "cpu", adapter: str | None = None, version: str = "") -> ChatLM:
        """The LM in the dtype it was saved in (the packaged Qwen in bf16), with a LoRA adapter merged into
        its weights when one is given (a fine-tuned teacher)."""
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging

        logging.disable_progress_bar()
        tokenizer = AutoTokenizer.from_pretrained(source.path)
        model = AutoModelForCausalLM.from_pretrained(source.path, dtype="auto")
        if adapter:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
        return cls(model.to(device).eval(), tokenizer, version or source.version, device)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    @torch.inference_mode()
    def chat(self, messages: list[dict[str, str]], decoding: Decoding = Decoding()) -> str:
        inputs = self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        ).to(self.device)
        if decoding.seed is not None:
            torch.manual_seed(decoding.seed)
        sampling = dict(temperature=decoding.temperature, top_p=decoding.top_p) if decoding.do_sample else {}
        output = self.model.generate(
            **inputs,
            max_new_tokens=decoding.max_new_tokens,
            do_sample=decoding.do_sample,
            repetition_penalty=decoding.repetition_penalty,
            logits_processor=LogitsProcessorList(
                [NoRepeatInReply(decoding.no_repeat_ngram_size, inputs["input_ids"].shape[1])]
                if decoding.no_repeat_ngram_size else []),
            num_beams=decoding.num_beams,
            pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
            **sampling,
        )
        new_tokens = output[0, inputs["input_ids"].shape[1] :]
        return self.tokenizer.decode(new_tokens, skip_special_tokens=True).strip()
