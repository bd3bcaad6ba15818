"""Students' greedy summaries on training-side items that DPO did not pair: a check that needs no held-out item.

DPO pairs samples of the first `--skip` (its `items`, 72) short training items; the next `--items` items were
heard by SFT and KD but not by DPO. Their generated summaries (greedy, before the grounding check),
scored for hallucination against the spoken text and ROUGE-L against the human answer, show
whether a DPO run lowered hallucination beyond its own pairs, so DPO settings can be compared
without looking at the held-out meetings.

    python bench/train_side.py kd-A dpo-B --out bench/results/NAME.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from statistics import mean

import torch
from tqdm import tqdm

from models.llm import Decoding
from models.student import instruction, load_student
from storage import registry
from storage.db import session_scope
from storage.settings import load_settings
from training.metrics import hallucination, rouge
from training.stages.dpo import DPOConfig
from training.stages.sft import student_items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("versions", nargs="+", help="student versions to compare")
    parser.add_argument("--skip", type=int, default=DPOConfig.items, help="the items DPO samples (its `items`)")
    parser.add_argument("--items", type=int, default=40)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    settings = load_settings()
    decoding = Decoding(max_new_tokens=settings.summary_max_tokens)
    result = {"items": f"short training items {args.skip}..{args.skip + args.items - 1} (not among DPO's)"}
    for name in args.versions:
        with session_scope(settings.db_url) as session:
            checkpoint = registry.get(session, name).checkpoint
        student = load_student(checkpoint, settings.models_dir, settings.device)
        student.eval()
        items, frames = student_items(settings, student, DPOConfig.max_words, args.skip + args.items, DPOConfig.seed)
        rows = []
        for item, f in tqdm(list(zip(items, frames))[args.skip:], desc=name, unit="item"):
            with torch.no_grad():
                (found,) = student.generate_from_embeddings([student.projector(f)], [instruction(item.query)], decoding)
            text = found.text
            rows.append((hallucination(text, item.spoken_text).rate, rouge(text, [item.reference])["rougeL"],
                         len(text.split())))
        result[name] = {"generated: hallucination": round(mean(r[0] for r in rows), 3),
                        "generated: ROUGE-L": round(100 * mean(r[1] for r in rows), 1),
                        "words": round(mean(r[2] for r in rows), 1)}
        print(name, result[name], flush=True)
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
