"""The labelled items everything learns from and is measured on, and the one split of them.

An item is a span of a QMSum meeting, a query about it and a human answer (../shared/data; see its
README for the licence). The split is by meeting: a meeting with a held-out item gives no training
data at all. The training side also gets the answers as the recording can support them (`heard_answer`).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

DEV_FILE = "qmsum_dev.jsonl"  # split by meeting into training and held-out items
POOL_FILE = "qmsum_train_pool.jsonl"  # training only: more items, of the same meetings and others


@dataclass(frozen=True)
class EvalItem:
    id: str
    query: str
    transcript: str  # "Speaker: text" lines
    reference: str  # the human-written answer

    @property
    def turns(self) -> list[tuple[str, str]]:
        out = []
        for line in self.transcript.splitlines():
            speaker, sep, text = line.partition(": ")
            if line.strip() == "[...]" or not text.strip():
                continue
            out.append((speaker.strip(), text.strip()) if sep else ("", line.strip()))
        return out

    @property
    def spoken_text(self) -> str:
        """What the recording says: the transcript without speaker labels."""
        return " ".join(text for _, text in self.turns)

    @property
    def diarized_text(self) -> str:
        """The transcript as the served cascade reads it: one "Speaker N: text" line per turn, numbered
        in order of first words as the diarizer does, since the recording gives it no names."""
        numbers: dict[str, str] = {}
        lines: list[list[str]] = []
        for speaker, text in self.turns:
            label = numbers.setdefault(speaker, f"Speaker {len(numbers) + 1}")
            if lines and lines[-1][0] == label:
                lines[-1][1] += f" {text}"
            else:
                lines.append([label, text])
        return "\n".join(f"{label}: {text}" for label, text in lines)

    @property
    def meeting(self) -> str:
        """The meeting an item is asked about ("qmsum-train-Bed004-q05" -> "Bed004"); other ids stand alone."""
        parts = self.id.split("-")
        return parts[2] if len(parts) == 4 and parts[0] == "qmsum" else self.id

    @property
    def is_summarize_query(self) -> bool:
        return self.query.lower().startswith("summarize")


def load_items(path: str | Path) -> list[EvalItem]:
    with open(path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [EvalItem(r["id"], r["query"], r["transcript"], r["summary"]) for r in rows]


SPLIT_SEED = 0  # a meeting's side never follows a run's `--seed`: the benchmarks and the gate read this split


def held_out_meeting(meeting: str, held_out_share: float = 0.5) -> bool:
    h = int(hashlib.sha256(f"{SPLIT_SEED}:{meeting}".encode()).hexdigest()[:8], 16) / 16**8
    return h < held_out_share


def split(items: list[EvalItem], seed: int = 0, held_out_share: float = 0.5) -> dict[str, list[EvalItem]]:
    """A fixed dev / held-out split by meeting: each item's side depends only on its meeting; `seed`
    only orders each side. A stage run with another seed must not train on the held-out meetings.

    QMSum asks several questions about each meeting and their spans overlap, so a split by item
    would let training hear parts of held-out spans. A meeting with a held-out item gives no
    training data at all."""
    def side(item: EvalItem) -> str:
        return "held_out" if held_out_meeting(item.meeting, held_out_share) else "dev"

    parts: dict[str, list[EvalItem]] = {"dev": [], "held_out": []}
    for item in sorted(items, key=lambda i: i.id):
        parts[side(item)].append(item)
    for part in parts.values():  # a seeded order, so "the first 50" is a fair sample
        random.Random(seed).shuffle(part)
    return parts


def training_items(root: Path, seed: int = 0) -> list[EvalItem]:
    """Every labelled item of a meeting on the training side of the split: the dev part (in `seed`'s
    order) plus the pool's."""
    data, pool = root / DEV_FILE, root / POOL_FILE
    extra = [i for i in load_items(pool) if not held_out_meeting(i.meeting)] if pool.exists() else []
    return split(load_items(data), seed)["dev"] + extra


def data_hash(*parts: object) -> str:
    """A short digest of what a run trains on (item ids, voices, sizes): part of its identity."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def unspoken_labels(item: EvalItem) -> set[str]:
    """The item's speaker labels that its spoken text never says (QMSum's "Project Manager", "PhD F")."""
    spoken = item.spoken_text.lower()
    return {s for s, _ in item.turns if s and s.lower() not in spoken}


def heard_answer(item: EvalItem) -> str:
    """The human answer with the speakers the recording never names ("Project Manager", "PhD F":
    QMSum's speaker labels, which TTS does not speak) turned into "a participant".

    Half of the training answers name a speaker by such a label. Taught them as they are, the
    student learns to write names it cannot hear, and the grounding check then drops those
    sentences; the student can only say that somebody said it."""
    text = item.reference
    for label in sorted(unspoken_labels(item), key=len, reverse=True):
        text = re.sub(rf"\b(?:[Tt]he )?{re.escape(label)}\b", "a participant", text)
    text = re.sub(r"\ba participant and a participant\b", "two participants", text)
    return re.sub(r"(^|[.!?]\s+)(a participant|two participants)", lambda m: m.group(1) + m.group(2).capitalize(),
                  text)


def answer_for(item: EvalItem, heard: bool) -> str:
    """What a stage teaches as the item's answer: the heard answer, or with `heard` off the human one as written."""
    return heard_answer(item) if heard else item.reference


def short_items(items: list[EvalItem], max_words: int, limit: int | None = None) -> list[EvalItem]:
    """Items whose transcript has at most `max_words` words (a CPU step costs in proportion to length)."""
    chosen = [i for i in items if len(i.spoken_text.split()) <= max_words]
    return chosen[:limit] if limit else chosen
