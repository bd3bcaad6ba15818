"""Tiny random-weight stand-ins for the stages' tests: a student, a teacher of the same tokenizer, items."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch
from transformers import WhisperConfig
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from models.student import (
    AudioEncoder,
    Projector,
    Student,
    StudentConfig,
    build_student,
    with_lora,
)
from storage import registry
from storage.db import session_scope
from training.data.items import EvalItem
from training.stages.teacher import Teacher

ITEMS = [
    EvalItem(f"qmsum-train-T{i:03d}-q00", query, f"Manager: the budget is approved\nUser: {text}", answer)
    for i, (query, text, answer) in enumerate([
        ("What about the budget?", "the budget is approved", "the budget is approved"),
        ("Summarize the recording in three sentences.", "Transcribe the audio.", "the audio is the budget"),
        ("", "the budget is the budget", "approved"),
        ("What is approved?", "the recording is approved", "the recording is approved"),
    ])
]


def tiny_teacher(seed: int = 5) -> Teacher:
    lm, tokenizer = tiny_chat_lm(WORDS, seed=seed)
    return Teacher(lm.requires_grad_(False), tokenizer, "tiny-teacher")


def tiny_frames(n: int, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(40 + 8 * i, 16, generator=g) for i in range(n)]


def registered_student(settings, tmp_path, name: str = "align-tiny", stage: str = "align", serve: bool = True
                       ) -> Student:
    student = tiny_student()
    checkpoint = student.save(tmp_path / "students" / name)
    with session_scope(settings.db_url) as s:
        version = registry.register(s, name=name, kind="student", stage=stage, checkpoint=checkpoint,
                                    bases=student.bases)
        if serve:
            registry.promote(s, version)
    return student


def tiny_bases(root: Path) -> tuple[str, str]:
    """A random-weight Whisper and chat LM saved as model dirs: a student built on them loads from
    its checkpoint in any process (a worker), as a real one does."""
    from transformers import WhisperConfig, WhisperModel

    if not (root / "lm" / "config.json").exists():
        torch.manual_seed(0)
        config = WhisperConfig(d_model=16, encoder_layers=2, decoder_layers=1, encoder_attention_heads=2,
                               decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, num_mel_bins=80,
                               max_source_positions=1500, vocab_size=64,
                               pad_token_id=0, bos_token_id=1, eos_token_id=2, decoder_start_token_id=1)
        WhisperModel(config).save_pretrained(root / "whisper")
        lm, tokenizer = tiny_chat_lm(WORDS + [t for i in ITEMS for t in (i.transcript, i.reference)], seed=0)
        lm.save_pretrained(root / "lm")
        tokenizer.save_pretrained(root / "lm")
    return str(root / "whisper"), str(root / "lm")


def served_disk_student(settings, root: Path, name: str = "dpo-tiny", stage: str = "dpo", serve: bool = True) -> str:
    """A tiny student on tiny_bases, saved, registered and (unless `serve` is false) served; returns its name."""
    encoder, lm = tiny_bases(root / "bases")
    student = build_student(dataclasses.replace(CONFIG, encoder=encoder, llm=lm), settings.models_dir)
    checkpoint = student.save(root / "students" / name)
    with session_scope(settings.db_url) as s:
        version = registry.register(s, name=name, kind="student", stage=stage, checkpoint=checkpoint,
                                    bases=student.bases)
        if serve:
            registry.promote(s, version)
    return name


def write_gate_data(root: Path, n: int = 3) -> Path:
    """A shared-data dir whose qmsum_dev.jsonl has `n` short held-out items (and a training one)."""
    from training.data.items import held_out_meeting

    root.mkdir(parents=True, exist_ok=True)
    rows, meeting = [], 0
    while len(rows) < n + 1:
        meeting += 1
        held = held_out_meeting(f"M{meeting:03d}")
        if held and len([r for r in rows if r["held"]]) < n or not held and not any(not r["held"] for r in rows):
            rows.append({"id": f"qmsum-test-M{meeting:03d}-q00", "query": "What about the budget?",
                         "transcript": "Alice: the budget is approved.\nBob: the recording is approved.",
                         "summary": "the budget is approved", "held": held})
    (root / "qmsum_dev.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root
CONFIG = StudentConfig(stack=4, projector_hidden=24, lora_r=4, lora_alpha=8, lora_dropout=0.0,
                       lora_targets=("q_proj", "v_proj"))


WORDS = ["Transcribe the audio.", "Summarize the recording in three sentences.", "the budget is approved", "user"]


def tiny_student(seed: int = 0) -> Student:
    torch.manual_seed(seed)
    whisper = WhisperConfig(d_model=16, encoder_layers=2, encoder_attention_heads=2, encoder_ffn_dim=32,
                            num_mel_bins=80, max_source_positions=1500)
    encoder = AudioEncoder(WhisperEncoder(whisper).eval(), 80)
    lm, tokenizer = tiny_chat_lm(WORDS, seed=seed)
    torch.manual_seed(seed + 1)
    projector = Projector(16, CONFIG.stack, CONFIG.projector_hidden, lm.config.hidden_size)
    return Student(CONFIG, encoder, projector, with_lora(lm, CONFIG), tokenizer, {"encoder": "tiny", "llm": "tiny"})


def tiny_chat_lm(corpus: list[str], seed: int = 0):
    """A random-weight 2-layer Llama with a word-level tokenizer over `corpus` and a chat template."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    specials = ["<unk>", "<pad>", "<|im_start|>", "<|im_end|>"]
    tok.train_from_iterator(corpus, trainers.WordLevelTrainer(special_tokens=specials))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", eos_token="<|im_end|>")
    tokenizer.chat_template = CHAT_TEMPLATE
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    return LlamaForCausalLM(config).eval(), tokenizer


CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|> {{ m['role'] }} {{ m['content'] }} <|im_end|> {% endfor %}"
    "{% if add_generation_prompt %}<|im_start|> assistant {% endif %}"
)


