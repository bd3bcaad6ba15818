"""The text teacher: an LLM that reads the transcript and the query, and scores the student's tokens.

Default: the packaged SmolLM2-135M-Instruct with its own LoRA adapter, first fine-tuned here on the
training items (transcript + query -> the human answer), so the teacher knows the task better than
the raw LM. Any local model dir or hub id that shares the student's tokenizer can teach (SmolLM2-360M
or 1.7B Instruct would); distillation compares distributions token by token, so a model with another
tokenizer is refused. The fine-tuned teacher is a registered version of kind "teacher": promoted, it
serves the cascade with the prompts it was fine-tuned on: `reading_prompt` for SmolLM2, and for an LM
that writes the meeting notes (the cascade's Qwen2.5-Coder-1.5B) the notes and focus prompts
(`models.notes`), reading "Speaker N:" lines as the diarizer gives them, and writing the generated
meetings' notes in that form. Such a teacher cannot score the student's tokens (another tokenizer):
it serves the cascade.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from models.notes import answer_prompt, notes_prompt
from models.sources import llm_version, resolve_llm, writes_notes
from models.student import autocast, continuation_outputs, token_logprobs
from models.summarizer import reading_prompt
from storage import registry
from storage.db import session_scope
from storage.settings import Settings
from training.config import option
from training.data.items import EvalItem, answer_for, training_items
from training.data.meetings import NOTES_QUERY, meeting_items
from training.losses import nll_loss
from training.stages.runs import LoopConfig, Run, config_dict, finish, fit


class TeacherError(ValueError):
    """A teacher that cannot teach this student; the message is meant for the user."""


@dataclass
class Teacher:
    lm: nn.Module
    tokenizer: object
    name: str
    notes: bool = False  # an LM that writes the notes when it serves (sources.writes_notes) is fine-tuned on them

    @property
    def device(self) -> torch.device:
        return next(self.lm.parameters()).device

    def prompt_ids(self, transcript: str, query: str | None, notes: bool = False) -> list[int]:
        """`reading_prompt` (what KD scores the student's tokens on), or with `notes` the notes and focus
        prompts a notes LM serves with."""
        if notes:
            messages = notes_prompt(transcript) if query == NOTES_QUERY else answer_prompt(transcript, query)
        else:
            messages = [{"role": "system", "content": ""},
                        {"role": "user", "content": reading_prompt(transcript, query)}]
        return self.tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=True,
                                                  return_dict=True)["input_ids"]

    def continuation_logits(self, transcripts: list[str], queries: list[str | None], continuations: list[list[int]],
                            notes: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Logits that predict each continuation while reading its transcript: (B, L, V), ids, mask."""
        rows = [self.prompt_ids(t, q, notes) + c for t, q, c in zip(transcripts, queries, continuations, strict=True)]
        width = max(map(len, rows))
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows], device=self.device)
        mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=self.device)
        return continuation_outputs(self.lm, self.lm.get_input_embeddings()(ids), mask, ids, continuations)


def same_tokenizer(a, b) -> bool:
    return a.get_vocab() == b.get_vocab() and a.eos_token_id == b.eos_token_id


def load_teacher(settings: Settings, model: str, adapter: str | None = None, name: str = "",
                 student_tokenizer=None, trainable: bool = False, lora: TeacherConfig | None = None) -> Teacher:
    """The teacher LM (a packaged name, local dir or hub id), with a LoRA adapter merged in when given;
    `trainable`: that adapter to train further, else new LoRA adapters. Refuses another tokenizer than
    the student's."""
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = resolve_llm(model, settings.models_dir)
    tokenizer = AutoTokenizer.from_pretrained(source.path)
    if student_tokenizer is not None and not same_tokenizer(tokenizer, student_tokenizer):
        raise TeacherError(f"the teacher {model!r} has another tokenizer than the student's LM; distillation "
                           "compares them token by token, so choose a teacher of the same family")
    # A teacher that scores the student's tokens loads in fp32; a notes LM as stored (the 1.5B: bf16, half the memory).
    lm = AutoModelForCausalLM.from_pretrained(source.path, dtype="auto" if writes_notes(source.name) else torch.float32)
    if trainable:
        lora = lora or TeacherConfig()
        if lora.checkpointing:
            lm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if adapter:  # a parent's adapter, fine-tuned further (its rank and targets, not `lora`'s)
            lm = PeftModel.from_pretrained(lm, adapter, is_trainable=True)
        else:
            lm = get_peft_model(lm, LoraConfig(r=lora.lora_r, lora_alpha=lora.lora_alpha, lora_dropout=0.0,
                                               target_modules=list(lora.lora_targets), task_type="CAUSAL_LM"))
    else:
        if adapter:
            lm = PeftModel.from_pretrained(lm, adapter).merge_and_unload()
        lm.requires_grad_(False)
    return Teacher(lm.to(settings.device), tokenizer, name or source.version, notes=writes_notes(source.name))


@dataclass
class TeacherConfig(LoopConfig):
    model: str = option("smollm2-135m-instruct", "the teacher's LM: the packaged SmolLM2, a local dir or a hub id of "
                                                 "the student's tokenizer")
    batch_size: int = option(4, "items per step", ge=1)
    lr: float = option(3e-4, "peak learning rate (AdamW)", gt=0)
    epochs: int = option(2, "passes over the items (142 steps in the benched chain: about 12 minutes here)", ge=1)
    max_words: int = option(450, "longest transcript read, in words (longer spans cost more than they teach on a "
                                 "CPU)", ge=1)
    heard: bool = option(True, "read transcripts as served (no speaker labels) and learn answers that name no label")
    meetings: int = option(150, "generated meetings with known facts that join the QMSum items (notes and a focus "
                                "answer each; training.data.meetings)", ge=0)
    parent: str = option("", "a teacher version of the same LM whose adapter is fine-tuned further (default: new "
                             "adapters); the new version names it as its parent")
    checkpointing: bool = option(False, "recompute activations in the backward pass (slower; the 1.5B notes LM's "
                                        "activations do not fit 24 GB otherwise)")
    lora_r: int = option(16, "LoRA rank", ge=1)
    lora_alpha: int = option(32, "LoRA alpha", ge=1)
    lora_targets: tuple[str, ...] = option(("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                            "down_proj"), "the LM's modules that get LoRA adapters")


def teacher_reads(teacher: Teacher, item: EvalItem, heard: bool) -> str:
    """The transcript as the teacher will read it when it serves: a notes LM gets the diarizer's
    "Speaker N:" lines; with `heard`, the others get what the recording says (no labels)."""
    if teacher.notes:
        return item.diarized_text
    return item.spoken_text if heard else item.transcript


def teacher_answer(teacher: Teacher, item: EvalItem, heard: bool) -> str:
    """What the teacher learns to write: a notes LM, a meeting's notes as written (it reads the names said)."""
    if teacher.notes and item.query == NOTES_QUERY:
        return item.reference
    return answer_for(item, heard)


def answer_nll(teacher: Teacher, items: list[EvalItem], heard: bool = False) -> torch.Tensor:
    """The human answers' NLL given transcript + query: the teacher's fine-tuning loss. With `heard`
    the teacher reads what the recording says (no speaker labels) and learns the heard answer."""
    eos = teacher.tokenizer.eos_token_id
    answers = [teacher.tokenizer(teacher_answer(teacher, i, heard), add_special_tokens=False)["input_ids"] + [eos]
               for i in items]
    with autocast(teacher.device):
        logits, ids, mask = teacher.continuation_logits([teacher_reads(teacher, i, heard) for i in items],
                                                        [i.query for i in items], answers, teacher.notes)
    return nll_loss(*token_logprobs(logits, ids, mask))


def parent_adapter(settings: Settings, cfg: TeacherConfig) -> str:
    """The adapter of the teacher version `cfg.parent`; refused when it is not a teacher of `cfg.model`."""
    with session_scope(settings.db_url) as session:
        version = registry.get(session, cfg.parent)  # an unknown name is refused there
        if version.kind != "teacher":
            raise TeacherError(f"{cfg.parent!r} is not a teacher version: only a teacher's adapter is fine-tuned "
                               "further")
        if version.bases.get("llm") != llm_version(cfg.model):
            raise TeacherError(f"the teacher {cfg.parent!r} adapts {version.bases.get('llm')!r}, not {cfg.model!r}")
        return version.checkpoint


def finetune_teacher(settings: Settings, cfg: TeacherConfig = TeacherConfig(), progress=None) -> str:
    """Fine-tunes LoRA adapters of the teacher LM on the training items; registers a teacher version."""
    from training.data.items import data_hash, short_items

    torch.manual_seed(cfg.seed)
    items = short_items(training_items(settings.shared_data, cfg.seed), cfg.max_words) + meeting_items(cfg.meetings)
    data = data_hash("teacher", [i.id for i in items], "heard" if cfg.heard else "labelled")
    adapter = parent_adapter(settings, cfg) if cfg.parent else None
    teacher = load_teacher(settings, cfg.model, adapter, trainable=True, lora=cfg)
    run = Run(settings.data_dir, "teacher", config_dict(cfg), cfg.parent or cfg.model, data)
    lengths = [len(i.transcript.split()) for i in items]
    report = fit(run, teacher.lm, lambda batch: (answer_nll(teacher, [items[i] for i in batch], cfg.heard), {}),
                 lengths, cfg, "fine-tuning the teacher", progress)
    return finish(settings, run, kind="teacher", stage="teacher", write=teacher.lm.save_pretrained,
                  bases={"llm": teacher.name}, parent=cfg.parent or None, cfg=cfg, data=data, report=report,
                  metrics={"items": len(items)})
