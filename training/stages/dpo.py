"""Stage 3, DPO: prefer the summary people (or the facts check) chose over the one they rejected.

Pairs come from two places:
(a) users' votes: an A/B vote for the left or right summary, or a thumbs-up and a thumbs-down on two
    summaries of the same recording and query; ties and "both bad" give no pair. Each pair keeps the
    ids of the votes it came from.
(b) automatic: several samples of the parent per training item (QMSum items, and generated meetings'
    notes and focus answers), judged by the values they state
    (`pick_pair`): the chosen one states more of the transcript's values (names, numbers, dates,
    vendors) than the rejected one and none that the transcript lacks; on a generated meeting its
    known facts decide (right beats absent, absent beats wrong). The samples are kept per parent
    version, so a stopped run does not sample again and other selection settings reuse them.
The loss is DPO's sigmoid loss on summed log-probs, against the frozen parent (projector + adapter:
the bare LM cannot hear), whose log-probs are computed once before training.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import torch
from tqdm import tqdm

from models.llm import Decoding
from models.notes import NOTES_QUERY
from models.student import Student, autocast, instruction, load_student
from models.summarizer import notes_decoding
from storage import feedback
from storage.db import ensure_schema, session_scope
from storage.feedback import Pair
from storage.settings import Settings
from training.config import option
from training.data.items import EvalItem, data_hash
from training.data.meetings import fact_score, meeting_of
from training.data.speech import SPEAKER_VOICES
from training.losses import dpo_loss, sequence_logprob
from training.metrics import rouge, values
from training.stages.runs import LoopConfig, Run, config_dict, finish, fit, resolve_parent, save_atomically
from training.stages.sft import answer_ids, student_items


class NoPairs(ValueError):
    """DPO found nothing to learn from: no vote gave a preference and no samples had a clear gap."""


@dataclass
class DPOConfig(LoopConfig):
    batch_size: int = option(4, "pairs per step", ge=1)
    lr: float = option(2e-4, "peak learning rate (picked on training items DPO does not pair, bench/train_side.py; "
                             "5e-5 moved 2 points)", gt=0)
    epochs: int = option(4, "passes over the pairs (16 automatic pairs: 16 steps, as the benched chain's 15)", ge=1)
    beta: float = option(0.1, "DPO's beta: how far from the parent the policy may move", gt=0)
    samples: int = option(4, "samples of the parent per training item, for automatic pairs", ge=2)
    sample_minutes: float | None = option(None, "a cap on sampling the parent, in minutes (the 72 items took 18 "
                                                "and 24 here); items left then give no pair", ge=0)
    sample_temperature: float = option(0.7, "sampling temperature (nearer the served greedy output than 1.0, whose "
                                            "samples gave 9 pairs, not 16)", gt=0)
    max_new_tokens: int = option(96, "longest sample, in tokens", ge=1)
    max_words: int = option(450, "longest transcript heard, in words", ge=1)
    items: int = option(72, "training items sampled for automatic pairs: sampling's budget (most of the stage; "
                            "0: none)", ge=0)
    meetings: int = option(16, "generated meetings sampled too (their notes and a focus answer), paired by their "
                               "known facts: the pairs that teach notes to carry values", ge=0)
    votes: bool = option(True, "pairs from users' votes too (--no-votes: automatic pairs only, e.g. after "
                               "simulated votes from `make loop`)")
    votes_since: str = option("", "ISO time: only votes cast or changed after it (a refresh's new votes)")
    parent: str | None = option(None, "the KD student version to start from (default: the newest)")


def pick_pair(samples: list[str], item: EvalItem) -> tuple[str, str] | None:
    """(chosen, rejected) among one item's samples, or None when no sample is clearly better.

    A sample scores by the values it states: on a generated meeting its known facts (+1 right, 0
    absent, -1 wrong: right beats absent, absent beats wrong); elsewhere the transcript's values it
    carries (names, numbers, dates). The chosen one states nothing wrong and no value the transcript
    lacks, is at most twice the human answer's length (copying the transcript is not a summary), and
    scores highest (ROUGE-L breaks ties); the rejected one scores lowest. A vague sample ("the vendor
    was discussed") therefore never beats one that names the vendor."""
    meeting, source = meeting_of(item), values(item.spoken_text)
    limit = 2 * len(item.reference.split())

    def judged(text: str) -> tuple[int, bool]:
        invented = bool(values(text) - source)
        if meeting is None:
            return len(values(text) & source), invented
        right, wrong = fact_score(text, meeting)
        return right - wrong, invented or wrong > 0

    scored = {s: judged(s) for s in dict.fromkeys(s for s in samples if s.strip())}
    clean = [s for s, (_, bad) in scored.items() if not bad and len(s.split()) <= limit]
    chosen = max(clean, key=lambda s: (scored[s][0], rouge(s, [item.reference])["rougeL"]), default=None)
    rejected = min(scored, key=lambda s: (scored[s][0], not scored[s][1]), default=None)
    if chosen is None or rejected is None or scored[chosen][0] <= scored[rejected][0]:
        return None
    return chosen, rejected


def samples_path(settings: Settings, parent: str, cfg: DPOConfig) -> Path:
    """Where the parent's samples for automatic pairs are kept: one file per parent and sampling setting."""
    key = f"{parent}-{cfg.samples}x{cfg.sample_temperature}-{cfg.max_new_tokens}-seed{cfg.seed}.json"
    return settings.data_dir / "dpo-samples" / key


def parent_samples(student: Student, items: list[EvalItem], frames: list[torch.Tensor], cfg: DPOConfig,
                   cache: Path) -> list[list[str]]:
    """`cfg.samples` samples of the parent per item, read from and added to `cache`. Each item's seed
    comes from its id, so its samples do not depend on which other items are in the list. With a cap,
    sampling stops after `cfg.sample_minutes`; the items left get no samples, and a file beside the
    cache records the stop, so a resumed run pairs the same items."""
    done = json.loads(cache.read_text()) if cache.exists() else {}
    stopped, start = cache.with_name(cache.stem + ".stopped"), time.monotonic()
    cache.parent.mkdir(parents=True, exist_ok=True)
    for item, f in tqdm(list(zip(items, frames)), desc="sampling the parent", unit="item"):
        if item.id in done:
            continue
        capped = cfg.sample_minutes is not None and time.monotonic() - start > 60 * cfg.sample_minutes
        if stopped.exists() or capped:
            stopped.touch()
            tqdm.write(f"DPO: sampling stopped at its budget, {len(done)} of {len(items)} items sampled")
            break
        seed = int(hashlib.sha256(f"{cfg.seed}:{item.id}".encode()).hexdigest()[:12], 16)
        decoding = Decoding(max_new_tokens=cfg.max_new_tokens, do_sample=True, temperature=cfg.sample_temperature,
                            top_p=1.0, repetition_penalty=1.0, seed=seed)
        if item.query == NOTES_QUERY:  # sampled as notes are served: room for every item, the notes' n-gram ban
            decoding = notes_decoding(decoding)
        with torch.no_grad(), autocast(student.device):
            found = student.generate_from_embeddings([student.projector(f)], [instruction(item.query)], decoding,
                                                     candidates=cfg.samples)
        done[item.id] = [g.text for g in found]
        save_atomically(lambda path: path.write_text(json.dumps(done)), cache)
    return [done.get(item.id, []) for item in items]


def auto_pairs(samples: list[list[str]], items: list[EvalItem], cfg: DPOConfig) -> list[Pair]:
    pairs = []
    for index, (item, texts) in enumerate(zip(items, samples, strict=True)):
        picked = pick_pair(texts, item)
        if picked:
            pairs.append(Pair(item.query, *picked, "auto", item=index))
    return pairs


def pair_logprobs(student: Student, embeds: list[torch.Tensor], pairs: list[Pair]) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed log-probs of the chosen and of the rejected summaries, (B,) each, in one batch."""
    prompts = [instruction(p.query) for p in pairs]
    tokens = answer_ids(student, [p.chosen for p in pairs] + [p.rejected for p in pairs])
    with autocast(student.device):
        values, mask = student.continuation_logprobs(embeds + embeds, prompts + prompts, tokens)
    return sequence_logprob(values, mask).chunk(2)


def reward_stats(chosen: torch.Tensor, rejected: torch.Tensor) -> dict:
    return {"reward_accuracy": float((chosen > rejected).float().mean()),
            "reward_margin": round(float((chosen - rejected).mean()), 4)}


def dpo(settings: Settings, cfg: DPOConfig = DPOConfig(), progress=None, student: Student | None = None,
        data: tuple[list[EvalItem], list[torch.Tensor]] | None = None) -> str:
    """Trains from the KD student on vote and automatic pairs; registers the result; returns its name.
    (`student` and `data` stand in for what it would load, as in `sft`.)"""
    torch.manual_seed(cfg.seed)
    parent, checkpoint = resolve_parent(settings, cfg.parent, "student", "kd")
    student = student or load_student(checkpoint, settings.models_dir, settings.device)
    student.eval()
    items, frames = data or student_items(settings, student, cfg.max_words, cfg.items, cfg.seed, cfg.meetings)
    pairs = []
    if cfg.votes:
        ensure_schema(settings.db_url)
        with session_scope(settings.db_url) as session:
            pairs += feedback.vote_pairs(session, datetime.fromisoformat(cfg.votes_since) if cfg.votes_since else None)
    audio_frames = {}
    for p in pairs:
        if p.audio not in audio_frames:
            from storage.audio import read_samples  # PyAV, only when a vote's recording is read

            with torch.no_grad():
                audio_frames[p.audio] = student.encoder.encode(read_samples(p.audio))
    pairs += auto_pairs(parent_samples(student, items, frames, cfg, samples_path(settings, parent, cfg)), items, cfg)
    if not pairs:
        raise NoPairs("DPO found no preference pairs: no votes, and no sample pair with a clear gap")
    pair_frames = [audio_frames[p.audio] if p.audio else frames[p.item] for p in pairs]

    def embeds_of(batch: list[int]) -> list[torch.Tensor]:
        return [student.projector(pair_frames[i]) for i in batch]

    ref_chosen, ref_rejected = [], []  # the frozen parent's log-probs, once
    with torch.no_grad():
        for start in tqdm(range(0, len(pairs), cfg.batch_size), desc="reference log-probs", unit="batch"):
            batch = list(range(start, min(start + cfg.batch_size, len(pairs))))
            c, r = pair_logprobs(student, embeds_of(batch), [pairs[i] for i in batch])
            ref_chosen.append(c)
            ref_rejected.append(r)
    ref_chosen, ref_rejected = torch.cat(ref_chosen), torch.cat(ref_rejected)

    def loss_fn(batch: list[int]) -> tuple[torch.Tensor, dict]:
        chosen, rejected = pair_logprobs(student, embeds_of(batch), [pairs[i] for i in batch])
        index = torch.tensor(batch, device=chosen.device)
        loss, c_rewards, r_rewards = dpo_loss(chosen, rejected, ref_chosen[index], ref_rejected[index], cfg.beta)
        return loss, reward_stats(c_rewards, r_rewards)

    data = data_hash("dpo", [(p.source, p.vote_ids, p.item, p.chosen, p.rejected) for p in pairs], SPEAKER_VOICES)
    run = Run(settings.data_dir, "dpo", config_dict(cfg), parent, data)
    lengths = [len(p.chosen) + len(p.rejected) for p in pairs]
    report = fit(run, student, loss_fn, lengths, cfg, "DPO", progress)
    tail = [row[3] for row in report["curve"][-20:]]
    metrics = {"pairs": len(pairs), "vote_pairs": sum(p.source != "auto" for p in pairs),
               "vote_ids": sorted({v for p in pairs for v in p.vote_ids}),
               "reward_accuracy": round(sum(t["reward_accuracy"] for t in tail) / max(1, len(tail)), 3),
               "reward_margin": round(sum(t["reward_margin"] for t in tail) / max(1, len(tail)), 4)}
    return finish(settings, run, kind="student", stage="dpo", write=student.save, bases=student.bases,
                  parent=parent, cfg=cfg, data=data, report=report, metrics=metrics)
