"""The cascade's notes on training-side generated meetings: where notes changes are tuned, never on the benchmark.

The facts benchmark's meetings (bench/facts.py) are held out. Changes to the notes (prompts,
grounding, a notes teacher) are measured here instead: generated meetings of seeds no run trains on
(4242 and 5151; the training set uses seed 1000), and long ones (seed 6161: two or three agendas,
more than six decisions and action items), spoken with the training voices, transcribed and diarized
as served, and scored fact by fact (right, wrong, absent, per kind, short and long) with the
training generator's own known facts. Every system runs in the same run, so a comparison has its
baseline.

    python bench/facts_train.py cascade:raw cascade:teacher-A cascade:teacher-B student:sft-C --name NAME

A student (`student:VERSION`, or `student` for the served one) hears the spoken meeting itself.
`quoted` is the notes quoted from the transcript alone, which both systems fall back to.

Every LM reply is kept on disk by its prompt (greedy decoding gives the same reply every time), so
a change to what is done with the replies (grounding, the notes' rules) reruns in a minute; a
change to the prompt or the model asks the LM again.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections import Counter
from datetime import date
from pathlib import Path
from types import SimpleNamespace

from tqdm import tqdm

from bench.facts import said_anywhere
from bench.report import RESULTS, write_report
from models.llm import Decoding
from models.notes import Notes
from models.serving import load_diarizer, load_recognizer, load_student_summarizer, load_summarizer
from models.transcript_notes import from_transcript
from storage.settings import load_settings
from training.data.meetings import fact_verdicts, make_meeting, spoken
from training.evaluate import hear, stated

SEEDS = {4242: 12, 5151: 8}  # seed: meetings; seed 1000 is the training set's
LONG_SEEDS = {6161: 6}


class KeptReplies:
    """An LM whose replies are kept in a JSON file, keyed by model version, prompt and decoding."""

    def __init__(self, llm, path: Path):
        self.llm, self.path = llm, path
        self.replies = json.loads(path.read_text()) if path.exists() else {}

    def chat(self, messages, decoding):
        key = hashlib.sha256(json.dumps([self.llm.version, messages, decoding.as_dict()]).encode()).hexdigest()
        if key not in self.replies:
            self.replies[key] = self.llm.chat(messages, decoding)
            self.path.write_text(json.dumps(self.replies))
        return self.replies[key]

    def __getattr__(self, name):
        return getattr(self.llm, name)


def quoted_notes(samples, transcript) -> SimpleNamespace:
    """The notes quoted from the transcript alone: what every system falls back to where the model's own
    items are all dropped (models.transcript_notes.from_transcript)."""
    decisions, actions = from_transcript(transcript.segments)
    return SimpleNamespace(text="", raw="", model_version="transcript", notes=Notes("", decisions, actions).as_dict())


def share(part: int, whole: int) -> float:
    return round(part / whole, 3) if whole else 0.0


def markdown(report: dict) -> str:
    lines = [f"# Notes on training-side generated meetings, {report['date']}", "",
             f"{report['meetings']} meetings (seeds {report['seeds']}; no run trains on them; {report['long']} of them "
             f"long, {report['long_minutes']} minutes of text each on average), spoken with the training voices, "
             "transcribed and diarized as served; every system in this run.", "",
             f"The ASR transcripts say {report['transcript_says']} of the {report['facts']} facts somewhere (subject "
             "and value): no system that reads them can state more.", "",
             "| system | facts | right | wrong | absent | right share | wrong share of stated | right, short / long "
             "meetings | right by kind |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in report["rows"]:
        kinds = ", ".join(f"{k} {v['right']}/{v['facts']}" for k, v in row["by_kind"].items())
        lines.append(f"| {row['system']} | {row['facts']} | {row['right']} | {row['wrong']} | {row['absent']} | "
                     f"{100 * row['right_share']:.0f}% | {100 * row['wrong_share']:.0f}% | "
                     f"{100 * row['right_short']:.0f}% / {100 * row['right_long']:.0f}% | {kinds} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("systems", nargs="*", help="quoted (the transcript's own items), cascade:raw, cascade:served, "
                                                   "cascade:TEACHER, student or student:VERSION (none: only what the "
                                                   "ASR text says)")
    parser.add_argument("--name", default="facts-train")
    args = parser.parse_args()
    settings = load_settings()
    recognizer, diarizer = load_recognizer(settings), load_diarizer(settings)
    decoding = Decoding(max_new_tokens=settings.summary_max_tokens)
    meetings = [make_meeting(i, seed) for seed, n in SEEDS.items() for i in range(n)]
    meetings += [make_meeting(i, seed, long=True) for seed, n in LONG_SEEDS.items() for i in range(n)]
    heard, audio, says = [], [], 0
    for meeting in tqdm(meetings, desc="hearing the meetings", unit="meeting"):
        samples, transcript = hear(recognizer, diarizer, spoken(meeting, settings.data_dir / "facts-train-audio"))
        heard.append(transcript)
        audio.append(samples)
        says += said_anywhere(heard[-1].text, meeting)
    rows, per_meeting = [], {}
    for system in args.systems:
        kind, _, version = system.partition(":")
        if kind == "quoted":
            notes = quoted_notes
        elif kind == "student":
            summarizer = load_student_summarizer(settings, version or None)
            notes = lambda samples, transcript: summarizer.summarize(samples, transcript, None, decoding)  # noqa: E731
        else:
            summarizer = load_summarizer(settings, version or "served")
            summarizer.llm = KeptReplies(summarizer.llm, settings.data_dir / "facts-train-audio" / "replies.json")
            notes = lambda samples, transcript: summarizer.summarize(transcript, None, decoding)  # noqa: E731
        counts, kinds, lengths, per_meeting[system] = Counter(), {}, {True: Counter(), False: Counter()}, []
        for meeting, samples, transcript in tqdm(list(zip(meetings, audio, heard)), desc=system, unit="meeting"):
            summary = notes(samples, transcript)
            text = stated(summary)
            verdicts = fact_verdicts(text, meeting)
            for fact, verdict in verdicts:
                counts[verdict] += 1
                lengths[meeting.long].update([verdict, "facts"])
                kind = kinds.setdefault(fact.kind, Counter())
                kind[verdict] += 1
                kind["facts"] += 1
            per_meeting[system].append({"id": meeting.id, "stated": text, "raw": summary.raw,
                                        "dropped": (summary.notes or {}).get("dropped", []),
                                        "verdicts": [(f.kind, f.subject, f.value, v) for f, v in verdicts]})
        facts = sum(counts.values())
        rows.append({"system": f"{system} ({summary.model_version})", "facts": facts, **{
            v: counts[v] for v in ("right", "wrong", "absent")}, "right_share": share(counts["right"], facts),
            "wrong_share": share(counts["wrong"], counts["right"] + counts["wrong"]),
            "right_short": share(lengths[False]["right"], lengths[False]["facts"]),
            "right_long": share(lengths[True]["right"], lengths[True]["facts"]),
            "by_kind": {k: {"right": c["right"], "wrong": c["wrong"], "facts": c["facts"]} for k, c in kinds.items()}})
        print(rows[-1]["system"], {k: rows[-1][k] for k in ("right", "wrong", "absent")}, flush=True)
    long = [m for m in meetings if m.long]
    report = {"date": date.today().isoformat(), "meetings": len(meetings),
              "seeds": ", ".join(map(str, [*SEEDS, *LONG_SEEDS])), "long": len(long),
              "long_minutes": round(sum(m.minutes for m in long) / max(1, len(long)), 1),
              "facts": sum(len(m.facts) for m in meetings), "transcript_says": says, "rows": rows,
              "per_meeting": per_meeting}
    write_report(RESULTS / f"{report['date']}-{args.name}", report, markdown(report))


if __name__ == "__main__":
    main()
