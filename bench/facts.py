"""The facts benchmark (`make bench-facts`): does a summary get who, what, how much and when right?

ROUGE on QMSum does not see a wrong owner or a wrong date. Here the meetings are written by code
from seeded templates, so every fact is known exactly: 12 meetings of 2 to 25 minutes, 2 to 5
named speakers, each with amounts, dates, decisions, owners and deadlines, some of them corrected
later in the meeting ("make that the 20th, not the 15th"), spoken with one flite or espeak-ng voice
per speaker. Each meeting also has focus questions with their right answers.

Checking is rule-based (`check`): a summary sentence that names a fact's subject ("press release")
states the fact right when it carries the right value (Ben; May 20; $40,000) and wrong when it
carries another value of the same kind instead (another participant, another date or amount, the
superseded value of a correction). Numbers and dates are compared after Whisper's normalizer, so
"forty thousand dollars" is "$40000" and "the twentieth of May" is "may 20th".
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import asdict
from datetime import date
from pathlib import Path

from bench.report import RESULTS, write_report
from models.grounding import sentences
from storage.audio import SAMPLE_RATE
from training.data.meetings import Fact, Meeting, has_value, value_tokens
from training.evaluate import hear, stated

PEOPLE = ("Ana", "Ben", "Chloe", "David", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas")
MEETING_VOICES = ("flite:kal16", "flite:slt", "flite:awb", "flite:rms", "espeak:en-us")
MONTHS = ("March", "April", "May", "June", "July", "September", "October")
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")
ORDINAL = {1: "first", 2: "second", 3: "third", 5: "fifth", 8: "eighth", 9: "ninth", 12: "twelfth",
           15: "fifteenth", 18: "eighteenth", 20: "twentieth", 22: "twenty-second", 25: "twenty-fifth",
           28: "twenty-eighth"}
NUMBER_WORDS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 8: "eight"}
# (subject keywords, what it is) for each kind of fact
TASKS = (("press release", "the press release"), ("vendor contract", "the vendor contract"),
         ("budget report", "the budget report"), ("onboarding guide", "the onboarding guide"),
         ("customer survey", "the customer survey"), ("security review", "the security review"),
         ("travel plan", "the travel plan for the conference"), ("demo", "the demo for the board"))
AMOUNTS = (("redesign", "the website redesign"), ("marketing", "the spring marketing campaign"),
           ("training", "the staff training program"), ("laptops", "new laptops"))
EVENTS = (("launch", "the product launch"), ("offsite", "the team offsite"), ("audit", "the external audit"))
VENDORS = ("Northwind", "Contoso", "Globex", "Initech", "Umbrella", "Hooli")
FILLER = ("Let's keep this moving, we have a lot to cover.", "Can everyone hear me all right?",
          "I'll share my screen in a second.", "That matches what I heard from the team as well.",
          "Does anyone have questions on that before we go on?", "I think we covered this last time too.",
          "Let me check my notes quickly.", "Good point, I had not thought about it that way.",
          "We should keep an eye on that over the next few weeks.", "Okay, sounds reasonable to me.",
          "I agree, it is better to decide it today than to wait.", "Sorry, I was on mute, go ahead.",
          "The customers have been asking about this for a while.", "Let us write that down for the notes.")


def _date_words(month: str, day: int) -> str:
    return f"{month} {ORDINAL[day]}"


def _money_words(amount: int) -> str:
    thousands = amount // 1000
    words = {5: "five", 8: "eight", 12: "twelve", 15: "fifteen", 20: "twenty", 25: "twenty-five", 30: "thirty",
             40: "forty", 45: "forty-five", 60: "sixty", 75: "seventy-five", 90: "ninety"}[thousands]
    return f"{words} thousand dollars"


def _item(rng: random.Random, speakers: list[str], kind: str, used: set[str]) -> tuple[list[tuple[str, str]], Fact]:
    """One agenda item: a few turns that state one fact (sometimes corrected), and the fact."""
    chair, other = speakers[0], rng.choice(speakers[1:])
    fix = rng.random() < 0.4
    if kind in ("owner", "deadline"):
        subject, what = rng.choice([t for t in TASKS if t[0] not in used])
        used.add(subject)
        if kind == "owner":
            first, final = rng.sample(speakers[1:], 2) if len(speakers) > 2 and fix else (other, other)
            turns = [(chair, f"Next is {what}. {first}, can you own {what}?"), (first, f"Yes, I can take {what}.")]
            if first != final:
                turns += [(chair, f"Actually, {first} is busy with the audit, so {final} owns {what}, not {first}."),
                          (final, f"Fine, {what} is mine then.")]
            return turns, Fact("owner", subject, final.lower(), first.lower() if first != final else "",
                               f"Who owns {what}?")
        first, final = rng.sample(DAYS, 2)
        turns = [(chair, f"When is {what} due?"), (other, f"{what[0].upper() + what[1:]} is due on {first}.")]
        if fix:
            turns += [(chair, f"Correction: {what} is due on {final}, not {first}, because of the holiday."),
                      (other, f"Understood, {final} for {what}.")]
        return turns, Fact("deadline", subject, (final if fix else first).lower(), first.lower() if fix else "",
                           f"When is {what} due?")
    if kind == "amount":
        subject, what = rng.choice([a for a in AMOUNTS if a[0] not in used])
        used.add(subject)
        first, final = (x * 1000 for x in rng.sample((5, 8, 12, 15, 20, 25, 30, 40, 45, 60, 75, 90), 2))
        turns = [(chair, f"The budget for {what}."),
                 (other, f"We approved {_money_words(first)} for {what}.")]
        if fix:
            turns += [(chair, f"Sorry, the {subject} budget is {_money_words(final)}, not {_money_words(first)}."),
                      (other, "Right, I misread the sheet.")]
        return turns, Fact("amount", subject, str(final if fix else first), str(first) if fix else "",
                           f"How much was approved for {what}?")
    if kind == "date":
        subject, what = rng.choice([e for e in EVENTS if e[0] not in used])
        used.add(subject)
        month = rng.choice(MONTHS)
        first, final = rng.sample(sorted(ORDINAL), 2)
        turns = [(chair, f"About {what}."), (other, f"{what[0].upper() + what[1:]} is on {_date_words(month, first)}.")]
        if fix:
            turns += [(chair, f"No, {what} moved to {_date_words(month, final)}, not the {ORDINAL[first]}."),
                      (other, f"Okay, {_date_words(month, final)} it is.")]
        value = f"{month} {final if fix else first}".lower()
        return turns, Fact("date", subject, value, f"{month} {first}".lower() if fix else "", f"When is {what}?")
    first, final = rng.sample(VENDORS, 2)
    turns = [(chair, "We need to pick the hosting vendor."), (other, f"I prefer {first}, their offer is clear."),
             (chair, f"Then we decided: the hosting vendor is {first}.")]
    if fix:
        turns += [(other, f"Wait, {first} cannot start until autumn. We should go with {final} instead."),
                  (chair, f"Agreed, the hosting vendor is {final}, not {first}.")]
    return turns, Fact("decision", "hosting", (final if fix else first).lower(), first.lower() if fix else "",
                       "Which hosting vendor did we choose?")


DISCUSSION = ("The {s} came up with the clients last week as well.", "I have some questions about the {s}, "
              "but nothing that blocks us.", "Let us make sure the {s} is in the notes.",
              "Who else needs to know about the {s}?", "I will mention the {s} to my team this afternoon.")
CORRECTION_STARTS = ("Actually", "Correction", "Sorry", "No,", "Wait")


def make_meeting(index: int, minutes: float, n_speakers: int, seed: int = 0) -> Meeting:
    """A meeting of about `minutes` spoken: agenda items stating facts, each followed by discussion
    without facts; a correction comes one item later than the fact it corrects."""
    rng = random.Random(f"{seed}:{index}")
    speakers = rng.sample(PEOPLE, n_speakers)
    kinds = ["owner", "deadline", "amount", "date", "decision", "owner", "deadline", "amount"]
    n_items = min(len(kinds), 2 + int(minutes // 3))
    turns = [(speakers[0], f"Good morning, this is {speakers[0]}. Let us start.")]
    turns += [(who, f"Hi, {who} here.") for who in speakers[1:]]
    facts, used = [], set()
    words_per_item, pending = minutes * 150 / n_items, []
    for kind in kinds[:n_items]:
        item, fact = _item(rng, speakers, kind, used)
        cut = next((i for i, (_, t) in enumerate(item) if t.startswith(CORRECTION_STARTS)), len(item))
        turns += item[:cut] + pending
        pending = item[cut:]
        facts.append(fact)
        talk = sum(len(t.split()) for _, t in item)
        while talk < words_per_item:  # discussion without facts, so longer meetings are longer
            line = rng.choice(FILLER + DISCUSSION).format(s=fact.subject)
            turns.append((rng.choice(speakers), line))
            talk += len(line.split())
    turns += pending + [(speakers[0], "Thanks everyone, that is all for today.")]
    questions = sorted(facts, key=lambda f: (not f.superseded, facts.index(f)))[:2]
    return Meeting(f"facts-{index:02d}", minutes, speakers, turns, facts, questions)


MEETINGS = ((2, 2), (2, 3), (3, 2), (3, 4), (4, 3), (4, 5), (5, 2), (5, 3), (6, 4), (8, 3), (10, 5), (25, 4))


def meetings(seed: int = 0) -> list[Meeting]:
    return [make_meeting(i, minutes, n, seed) for i, (minutes, n) in enumerate(MEETINGS)]


def _others(fact: Fact, meeting: Meeting) -> set[str]:
    """Values of the fact's kind that are not its right value (wrong if stated for its subject)."""
    if fact.kind == "owner":
        pool = {p.lower() for p in meeting.speakers}
    elif fact.kind == "deadline":
        pool = {d.lower() for d in DAYS}
    elif fact.kind == "decision":
        pool = {v.lower() for v in VENDORS}
    else:
        pool = {fact.superseded} if fact.superseded else set()
    return (pool | ({fact.superseded} if fact.superseded else set())) - {fact.value, ""}


def check(summary: str, meeting: Meeting) -> dict:
    """Per fact: "right", "wrong" or "absent", judged sentence by sentence (see the module docstring)."""
    verdicts = {}
    units = [(s, value_tokens(s), s.lower()) for s in sentences(summary)]
    for fact in meeting.facts:
        verdict = "absent"
        for _, tokens, lower in units:
            if not all(word in lower for word in fact.subject.split()):
                continue
            if fact.kind in ("amount", "date") and not fact.superseded:
                wrong = any(t.isdigit() and t != fact.value.split()[-1] for t in tokens) and not has_value(
                    tokens, fact.value, fact.kind)
            else:
                wrong = any(has_value(tokens, other, fact.kind) for other in _others(fact, meeting))
            if has_value(tokens, fact.value, fact.kind):
                verdict = "right"
                break
            if wrong:
                verdict = "wrong"
        verdicts[fact.subject] = verdict
    return verdicts


def said_anywhere(transcript: str, meeting: Meeting) -> int:
    """The facts whose subject and value the transcript says somewhere, not necessarily together: at
    most what a system reading it can state right (a value the recognizer lost, none can)."""
    tokens, lower = value_tokens(transcript), transcript.lower()
    return sum(all(w in lower for w in f.subject.split()) and has_value(tokens, f.value, f.kind) for f in meeting.facts)


def answer_right(answer: str, fact: Fact) -> bool:
    """A focus answer is right when it carries the right value and not the superseded one."""
    tokens = value_tokens(answer)
    superseded = fact.superseded and has_value(tokens, fact.superseded, fact.kind)
    return has_value(tokens, fact.value, fact.kind) and not superseded


def speak_meeting(meeting: Meeting, root: Path) -> Path:
    """The meeting spoken (one voice per speaker, in order of first appearance), cached under root."""
    from training.data.items import EvalItem
    from training.data.speech import speak

    transcript = "\n".join(f"{who}: {text}" for who, text in meeting.turns)
    wav = speak(EvalItem(meeting.id, "", transcript, ""), root, MEETING_VOICES)
    (root / f"{meeting.id}.json").write_text(json.dumps(asdict(meeting), indent=1))
    return wav


def write_meetings(root: Path, seed: int = 0) -> list[tuple[Meeting, Path]]:
    return [(meeting, speak_meeting(meeting, root)) for meeting in meetings(seed)]


def score_rows(meeting: Meeting, summary: str, answers: dict[str, str]) -> dict:
    verdicts = check(summary, meeting)
    right, wrong = sum(v == "right" for v in verdicts.values()), sum(v == "wrong" for v in verdicts.values())
    return {"meeting": meeting.id, "minutes": meeting.minutes, "speakers": len(meeting.speakers),
            "facts": len(meeting.facts), "right": right, "wrong": wrong,
            "focus_right": sum(answer_right(answers[f.question], f) for f in meeting.questions),
            "focus": len(meeting.questions), "verdicts": verdicts, "summary": summary, "answers": answers}


def table_row(system: str, rows: list[dict]) -> dict:
    said = sum(r["right"] + r["wrong"] for r in rows)
    long_rows, short_rows = [r for r in rows if r["minutes"] >= 10], [r for r in rows if r["minutes"] < 10]
    share = lambda rs: sum(r["right"] for r in rs) / max(1, sum(r["facts"] for r in rs))  # noqa: E731
    return {"system": system, "meetings": len(rows),
            "facts_right": share(rows), "stated_wrong": sum(r["wrong"] for r in rows) / max(1, said),
            "focus_right": sum(r["focus_right"] for r in rows) / max(1, sum(r["focus"] for r in rows)),
            "meetings_without_wrong": sum(r["wrong"] == 0 for r in rows) / max(1, len(rows)),
            "s_per_audio_minute": 60 * sum(r.get("latency_s", 0) for r in rows) / max(1, sum(r.get("audio_s", 0)
                                                                                            for r in rows)),
            "facts_right_short": share(short_rows), "facts_right_long": share(long_rows)}


def markdown(report: dict) -> str:
    lines = [f"# Facts benchmark, {report['date']}", "",
             f"{len(report['meetings'])} meetings written from templates, {report['audio_minutes']:.0f} minutes spoken "
             "(flite and espeak-ng voices, one per speaker).", "",
             f"The ASR transcripts say {100 * report['transcript_says']:.0f}% of the facts somewhere (subject and "
             "value): no system that reads them can state more.", "",
             "| system | facts right | stated facts wrong | focus answers right | meetings with no wrong fact "
             "| facts right, < 10 min | facts right, >= 10 min | notes: s per audio minute |",
             "|---|---|---|---|---|---|---|---|"]
    pct = lambda x: f"{100 * x:.0f}%"  # noqa: E731
    for row in report["rows"]:
        lines.append(f"| {row['system']} | {pct(row['facts_right'])} | {pct(row['stated_wrong'])} | "
                     f"{pct(row['focus_right'])} | {pct(row['meetings_without_wrong'])} | "
                     f"{pct(row['facts_right_short'])} | {pct(row['facts_right_long'])} | "
                     f"{row['s_per_audio_minute']:.1f} |")
    return "\n".join(lines) + "\n"


LEAD_WORDS = 60  # the trivial baseline: the meeting's first words, about a summary's length


class TranscriptNotes:
    """Notes read off the transcript alone, no model: what a system's notes fall back to when every item
    it wrote is dropped (models.transcript_notes), and its focus answers the notes' item about the
    question. The floor under the student, whose items rarely hold."""

    version = "no model"

    def summarize(self, transcript, query, decoding):
        from models.summarizer import notes_summary

        return notes_summary("", "", None, transcript, query, 5, "transcript", self.version, decoding,
                             time.perf_counter())


def _version(summarizer) -> str:
    if summarizer is None:
        return f"first {LEAD_WORDS} words"
    return summarizer.llm.version if hasattr(summarizer, "llm") else summarizer.version


def default_systems(settings) -> tuple[str, ...]:
    """The served cascade, the transcript-only notes, and the served student when there is one (a fresh
    install serves none until `speechsum train all`)."""
    from models.serving import served_student
    from models.student import StudentError

    try:
        served_student(settings)
    except StudentError:
        return ("cascade", "transcript")
    return ("cascade", "transcript", "student")


def run(settings, systems: tuple[str, ...] = ("cascade", "student"), out_dir: Path | None = None) -> dict:
    """Every meeting through the lead baseline and each system (a summary, and an answer per focus
    question); writes bench/results/<date>-facts.{json,md}. "cascade" has the served teacher's adapter
    when one is served; "cascade-raw" is the same LM untuned, for the fine-tuned-or-not comparison;
    "cascade:VERSION" has that teacher version's adapter (two teachers in one run), "student:VERSION" that
    student version; "transcript" the notes read off the transcript alone (TranscriptNotes)."""
    from tqdm import tqdm

    from models.llm import Decoding
    from models.serving import load_diarizer, load_recognizer, load_student_summarizer, load_summarizer

    spoken = write_meetings(settings.data_dir / "facts-audio")
    recognizer, diarizer = load_recognizer(settings), load_diarizer(settings)
    decoding = Decoding(max_new_tokens=settings.summary_max_tokens)

    def load(name: str):
        if name == "transcript":
            return TranscriptNotes()
        if name == "student" or name.startswith("student:"):
            return load_student_summarizer(settings, name.partition(":")[2] or None)
        teacher = {"cascade": "served", "cascade-raw": "raw"}.get(name) or name.partition(":")[2]
        return load_summarizer(settings, teacher)

    runs = [name for name in systems if name in ("cascade", "cascade-raw", "student", "transcript")
            or name.startswith(("cascade:", "student:"))]
    summarizers = {"lead": None} | {name: load(name) for name in runs}
    rows: dict[str, list[dict]] = {name: [] for name in summarizers}
    minutes, heard = 0.0, {}
    for meeting, wav in tqdm(spoken, desc="facts meetings", unit="meeting"):
        samples, transcript = hear(recognizer, diarizer, wav)
        minutes += len(samples) / SAMPLE_RATE / 60
        heard[meeting.id] = said_anywhere(transcript.text, meeting)
        for name, summarizer in summarizers.items():
            def said(query: str | None) -> tuple[str, float]:
                if name == "lead":
                    return " ".join(" ".join(text for _, text in meeting.turns).split()[:LEAD_WORDS]), 0.0
                if name.startswith("student"):
                    summary = summarizer.summarize(samples, transcript, query, decoding)
                else:
                    summary = summarizer.summarize(transcript, query, decoding)
                return (summary.text if query else stated(summary)), summary.latency_s

            text, latency = said(None)  # first: the notes' own time (a focus question reuses kept notes)
            answers = {f.question: said(f.question)[0] for f in meeting.questions}
            seconds = len(samples) / SAMPLE_RATE
            rows[name].append(score_rows(meeting, text, answers) | {
                "latency_s": latency, "audio_s": round(seconds, 1),
                "s_per_audio_minute": round(60 * latency / seconds, 1)})
    report = {"date": date.today().isoformat(), "audio_minutes": round(minutes, 1),
              "meetings": [asdict(m) for m, _ in spoken],
              "transcript_says": sum(heard.values()) / max(1, sum(len(m.facts) for m, _ in spoken)),
              "transcript_says_per_meeting": heard,
              "rows": [table_row(f"{name} ({_version(summarizers[name])})", rs) for name, rs in rows.items()],
              "per_meeting": rows}
    write_report((out_dir or RESULTS) / f"{report['date']}-facts", report, markdown(report))
    return report
