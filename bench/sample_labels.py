"""How often a student's own samples on training items name a speaker the audio never says.

Reads the samples DPO keeps per parent (`<data dir>/dpo-samples`, four per item on 72 training
items) and counts, per parent, the samples that use one of QMSum's speaker labels the spoken
meeting lacks ("Project Manager", "PhD F"), with the samples' hallucination rate and ROUGE-L
against the human answer. Training items only: a check of why KD hallucinates that needs no
held-out item.

    python bench/sample_labels.py kd-A kd-B --out bench/results/NAME.json
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from statistics import mean

from storage.settings import load_settings
from training.data.items import training_items, unspoken_labels
from training.metrics import hallucination, rouge


def names_a_label(text: str, labels: set[str]) -> bool:
    return any(re.search(rf"\b{re.escape(label)}\b", text, re.IGNORECASE) for label in labels)


def parent_stats(path: Path, items: dict) -> dict:
    samples = json.loads(path.read_text())
    rows = [(items[i], s) for i, found in samples.items() if i in items for s in found]
    return {"items": len(samples), "samples": len(rows),
            "name_an_unspoken_label": round(mean(names_a_label(s, unspoken_labels(i)) for i, s in rows), 3),
            "hallucination": round(mean(hallucination(s, i.spoken_text).rate for i, s in rows), 3),
            "rougeL": round(100 * mean(rouge(s, [i.reference])["rougeL"] for i, s in rows), 1),
            "words": round(mean(len(s.split()) for _, s in rows), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parents", nargs="+", help="student versions whose DPO samples are kept")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    settings = load_settings()
    items = {i.id: i for i in training_items(settings.shared_data, 0)}
    result = {"human answers (all training items)": {"name_an_unspoken_label": round(
        mean(names_a_label(i.reference, unspoken_labels(i)) for i in items.values()), 3)}}
    for parent in args.parents:
        found = sorted((settings.data_dir / "dpo-samples").glob(f"{parent}-*.json"))
        if not found:
            raise SystemExit(f"no kept samples of {parent}: DPO keeps them when it trains from that version")
        result[parent] = parent_stats(found[0], items)
    print(json.dumps(result, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
