"""Stage 1, SFT: the aligned student learns to answer from the audio what a person wrote about the meeting.

Each example is a training item spoken by TTS (one voice per speaker, the alignment's variety of
voices and speeds), its query (or the summary request of "Summarize ..." items) and the human
answer; the loss is the answer's NLL given the audio and the query. Projector and LoRA train.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from models.student import Student, autocast, instruction, load_student
from storage.settings import Settings
from training.config import option
from training.data.frames import spoken_frames
from training.data.items import EvalItem, answer_for, data_hash, short_items, training_items
from training.data.meetings import meeting_items
from training.data.speech import SPEAKER_VOICES
from training.losses import nll_loss
from training.stages.runs import LoopConfig, Run, config_dict, finish, fit, resolve_parent


@dataclass
class SFTConfig(LoopConfig):
    steps: int = option(175, "optimizer steps (the benched chain's: about 30 minutes here; a short SFT left the "
                             "loss falling and the summaries generic)", ge=0)
    batch_size: int = option(4, "spoken items per step", ge=1)
    lr: float = option(2e-4, "peak learning rate (AdamW)", gt=0)
    epochs: int = option(4, "passes over the items, when `steps` is 0", ge=1)
    max_words: int = option(450, "longest transcript heard, in words (spans of up to ~3 minutes spoken)", ge=1)
    items: int = option(0, "at most this many training items (0: every one short enough)", ge=0)
    heard_answers: bool = option(True, "answers name no speaker the audio never names (they become 'a participant')")
    meetings: int = option(150, "generated meetings with known facts that join the QMSum items (notes and a focus "
                                "answer each; training.data.meetings)", ge=0)
    parent: str | None = option(None, "the aligned student version to start from (default: the newest)")


def student_items(settings: Settings, student: Student, max_words: int, limit: int | None, seed: int,
                  meetings: int = 0) -> tuple[list[EvalItem], list[torch.Tensor]]:
    """The training items the student hears (the first `limit` short QMSum items, None: all of them, then
    `meetings` generated meetings' items), and their cached encoder frames on the student's device."""
    items = short_items(training_items(settings.shared_data, seed), max_words)[:limit] + meeting_items(meetings)
    return items, spoken_frames(items, student.encoder, settings.data_dir / "train-speech", student.encoder_tag, seed,
                                student.device)


def answer_ids(student: Student, texts: list[str]) -> list[list[int]]:
    eos = student.tokenizer.eos_token_id
    return [student.tokenizer(t, add_special_tokens=False)["input_ids"] + [eos] for t in texts]


def sft_loss(student: Student, frames: list[torch.Tensor], items: list[EvalItem], heard: bool = False
             ) -> torch.Tensor:
    """NLL of the human answers given the audio and the query (with `heard`, as `heard_answer` puts them)."""
    with autocast(student.device):
        embeds = [student.projector(f) for f in frames]
        logprobs, mask = student.continuation_logprobs(embeds, [instruction(i.query) for i in items],
                                                       answer_ids(student, [answer_for(i, heard) for i in items]))
    return nll_loss(logprobs, mask)


def sft(settings: Settings, cfg: SFTConfig = SFTConfig(), progress=None, student: Student | None = None,
        data: tuple[list[EvalItem], list[torch.Tensor]] | None = None) -> str:
    """Trains from the aligned student; registers the result as a candidate and returns its name.

    `student` and `data` (items, frames) stand in for the parent's checkpoint and the spoken training
    items where a caller has them already (tests build tiny ones)."""
    torch.manual_seed(cfg.seed)
    parent, checkpoint = resolve_parent(settings, cfg.parent, "student", "align")
    student = student or load_student(checkpoint, settings.models_dir, settings.device)
    items, frames = data or student_items(settings, student, cfg.max_words, cfg.items or None, cfg.seed, cfg.meetings)
    data = data_hash("sft", [i.id for i in items], SPEAKER_VOICES)
    run = Run(settings.data_dir, "sft", config_dict(cfg), parent, data)
    report = fit(run, student, lambda b: (sft_loss(student, [frames[i] for i in b], [items[i] for i in b],
                                                   cfg.heard_answers), {}),
                 [f.shape[0] for f in frames], cfg, "SFT", progress)
    return finish(settings, run, kind="student", stage="sft", write=student.save, bases=student.bases,
                  parent=parent, cfg=cfg, data=data, report=report, metrics={"items": len(items)})
