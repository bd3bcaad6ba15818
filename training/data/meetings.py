"""Meetings written from known facts, for training: a transcript and reference notes (decisions, action items).

QMSum's answers rarely carry an owner, a date and an amount together; these meetings do, so the
teacher and the student learn to write them down. They are kept apart from the facts benchmark
(bench/facts.py): other people, domains, tasks, vendors, phrasings and seeds, and a test checks that
no benchmark meeting or sentence is among them. Each meeting has small talk, an interruption, people
who never say their own name, facts given across two turns (the question in one, the value in the
next) and, often, a correction that wins over the value it corrects.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from pathlib import Path

from models.grounding import sentences
from models.notes import NOTES_QUERY, section
from training.data.items import EvalItem
from training.metrics import normalize


@dataclass
class Fact:
    kind: str  # owner, deadline, amount, date, decision
    subject: str  # keywords a sentence about it contains, e.g. "press release"
    value: str  # the right value: a name, "friday", "40000", "may 20", a vendor
    superseded: str = ""  # the value it had before a correction, now wrong
    question: str = ""  # a focus question whose answer is `value`
    unit: str = ""  # of an amount: "dollars", "pounds", "euros"


@dataclass
class Meeting:
    id: str
    minutes: float  # the target length when spoken
    speakers: list[str]
    turns: list[tuple[str, str]]
    facts: list[Fact]
    questions: list[Fact] = field(default_factory=list)  # the facts asked about as focus questions
    notes: str = ""  # the reference notes written from the facts

    @property
    def long(self) -> bool:
        """A long meeting (make_meeting's `long`): its id says so, so meeting_of can make it again."""
        return "-long-" in self.id


PEOPLE = ("Kofi", "Leila", "Marco", "Nadia", "Oscar", "Priya", "Rosa", "Sven", "Tamar", "Umar", "Vera", "Wen",
          "Yusuf", "Zoe", "Amir", "Bianca", "Carlos", "Dana", "Emeka", "Freya")
# A domain: tasks (owner and due day), costs (amounts), events (dates), and one choice among vendors.
DOMAINS = {
    "product": {"tasks": (("release notes", "the release notes"), ("checkout bug fix", "the checkout bug fix"),
                          ("pricing page", "the new pricing page"), ("support macros", "the support macros")),
                "costs": (("usability study", "the usability study"), ("ad campaign", "the ad campaign")),
                "events": (("beta", "the public beta"), ("store launch", "the app store launch")),
                "choice": ("payment provider", ("Paylane", "Finlo", "Coinbridge"))},
    "warehouse": {"tasks": (("inventory count", "the inventory count"), ("forklift training", "the forklift training"),
                            ("shelf layout", "the new shelf layout"), ("insurance renewal", "the insurance renewal")),
                  "costs": (("barcode printers", "the barcode printers"), ("loading ramp", "the loading ramp repair")),
                  "events": (("relocation", "the relocation"), ("fire inspection", "the fire inspection")),
                  "choice": ("moving company", ("Blue Line Moving", "Crestway Haulage", "Pinecrest Movers"))},
    "school": {"tasks": (("permission slips", "the permission slips"), ("reading list", "the summer reading list"),
                         ("parent newsletter", "the parent newsletter"), ("exam timetable", "the exam timetable")),
               "costs": (("library books", "the new library books"), ("science kits", "the science kits")),
               "events": (("open day", "the open day"), ("sports day", "the sports day")),
               "choice": ("bus company", ("Riverside Coaches", "Greenway Buses", "Lakeshore Travel"))},
    "clinic": {"tasks": (("staff rota", "the staff rota"), ("patient survey", "the patient survey"),
                         ("waiting room signs", "the waiting room signs"), ("vaccine order", "the vaccine order")),
               "costs": (("blood pressure monitors", "the blood pressure monitors"), ("software licence",
                                                                                     "the booking software licence")),
               "events": (("flu clinic", "the flu clinic"), ("audit visit", "the audit visit")),
               "choice": ("lab supplier", ("Medline Labs", "Northgate Diagnostics", "Clearpath Labs"))},
    "building": {"tasks": (("permit application", "the permit application"), ("safety plan", "the safety plan"),
                           ("tenant letter", "the tenant letter"), ("window quotes", "the window quotes")),
                 "costs": (("roof repair", "the roof repair"), ("scaffolding", "the scaffolding")),
                 "events": (("site visit", "the site visit"), ("handover", "the handover")),
                 "choice": ("contractor", ("Stonebridge Builders", "Keystone Works", "Oakfield Construction"))},
    "events": {"tasks": (("guest list", "the guest list"), ("seating plan", "the seating plan"),
                         ("sponsor pack", "the sponsor pack"), ("speaker briefing", "the speaker briefing")),
               "costs": (("venue deposit", "the venue deposit"), ("sound system", "the sound system")),
               "events": (("gala", "the gala"), ("press preview", "the press preview")),
               "choice": ("caterer", ("Saffron Table", "Harvest Kitchen", "Copper Pot Catering"))},
}
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
CURRENCIES = ("dollars", "pounds", "euros")
SMALL_TALK = (("How was everyone's weekend?", "Quiet, which was nice."), ("Is it raining where you are?",
              "Pouring, I got soaked on the way in."), ("Did you all get coffee?", "Just made some, yes."),
              ("Sorry I'm a bit late, the train was slow.", "No problem, we only just started."))
CHATTER = ("Okay.", "Right, makes sense.", "Yeah, that works for me.", "Let's note that.",
           "Sorry, you cut out for a second there.", "Go on.", "Sounds fine.")
ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
        "seventeen eighteen nineteen").split()
TENS = "- - twenty thirty forty fifty sixty seventy eighty ninety".split()
ORDINAL_ENDS = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
                "nine": "ninth", "twelve": "twelfth", "twenty": "twentieth", "thirty": "thirtieth"}


def number_words(n: int) -> str:
    """0 <= n < 1,000,000 in words: 62000 -> "sixty-two thousand", 1500 -> "one thousand five hundred"."""
    if n >= 1000:
        rest = n % 1000
        return number_words(n // 1000) + " thousand" + (" " + number_words(rest) if rest else "")
    if n >= 100:
        rest = n % 100
        return ONES[n // 100] + " hundred" + (" and " + number_words(rest) if rest else "")
    if n < 20:
        return ONES[n]
    return TENS[n // 10] + ("-" + ONES[n % 10] if n % 10 else "")


def ordinal_words(n: int) -> str:
    """1 -> "first", 22 -> "twenty-second", 30 -> "thirtieth"."""
    words = number_words(n)
    head, _, last = words.rpartition("-")
    end = ORDINAL_ENDS.get(last, last + "th")
    return f"{head}-{end}" if head else end


def _cap(text: str) -> str:
    return text[0].upper() + text[1:]


def _money(rng: random.Random) -> int:
    return rng.choice((1200, 1500, 2400, 3200, 4800, 6500, 7500, 9000, 11000, 14500, 18000, 22000, 36000, 52000))


def _action(rng, chair, people, task, due_fix) -> tuple[list[tuple[str, str]], list[Fact]]:
    """An owner and a due day for one task; the owner answers without saying their own name."""
    subject, what = task
    owner = rng.choice(people)
    first, final = rng.sample(DAYS, 2)
    ask = rng.choice((f"{owner}, could you pick up {what}?", f"Who can take {what}? {owner}, maybe you?"))
    turns = [(chair, ask), (owner, rng.choice(("Sure, I'll do it.", "Yes, leave it with me.", "Happy to.")))]
    turns += [(chair, f"And when can {what} be ready?"), (owner, f"By {first}, I think.")]  # across two turns
    if due_fix:
        turns += [(owner, f"Actually, make that {final}, not {first}. I'm away two days.")]
    due = final if due_fix else first
    return turns, [Fact("owner", subject, owner.lower(), "", f"Who is doing {what}?"),
                   Fact("deadline", subject, due.lower(), first.lower() if due_fix else "", f"When is {what} due?")]


def _cost(rng, chair, other, cost, fix, currency) -> tuple[list[tuple[str, str]], list[Fact]]:
    subject, what = cost
    first, final = _money(rng), _money(rng)
    while final == first:
        final = _money(rng)
    turns = [(chair, f"What did the quote come to for {what}?"), (other, f"{_cap(number_words(first))} {currency}.")]
    if fix:
        turns += [(chair, f"Hang on, the revised quote is {number_words(final)} {currency}, isn't it?"),
                  (other, f"Yes, sorry, {number_words(final)}, not {number_words(first)}.")]
    turns += [(chair, f"Fine, we approve that for {what}.")]
    value = final if fix else first
    return turns, [Fact("amount", subject, str(value), str(first) if fix else "", f"How much is approved for {what}?",
                        currency)]


def _date(rng, chair, other, event, fix) -> tuple[list[tuple[str, str]], list[Fact]]:
    subject, what = event
    month = rng.choice(MONTHS)
    first, final = rng.sample(range(1, 29), 2)
    turns = [(other, f"Quick one on {what}, is the date fixed?"),
             (chair, f"It's the {ordinal_words(first)} of {month}.")]
    if fix:
        turns += [(other, f"Sorry to jump in, I heard it moved to the {ordinal_words(final)}."),
                  (chair, f"You're right, {month} {ordinal_words(final)} now, not the {ordinal_words(first)}.")]
    day = final if fix else first
    return turns, [Fact("date", subject, f"{month} {day}".lower(), f"{month} {first}".lower() if fix else "",
                        f"When is {what}?")]


def _choice(rng, chair, other, choice, fix) -> tuple[list[tuple[str, str]], list[Fact]]:
    kind, vendors = choice
    first, final = rng.sample(vendors, 2)
    turns = [(chair, f"So which {kind} do we go with?"), (other, f"{first}. Their offer was the clearest.")]
    if fix:
        turns += [(chair, f"{first} can't start until next quarter, though. What about {final}?"),
                  (other, f"Then {final}, not {first}. Agreed.")]
    else:
        turns += [(chair, f"Agreed, {first} it is.")]
    return turns, [Fact("decision", kind, (final if fix else first).lower(), first.lower() if fix else "",
                        f"Which {kind} did we choose?")]


def notes_of(facts: list[Fact], domain: dict) -> str:
    """The reference notes, written from the facts alone: an overview, the decisions, the action items."""
    by = {(f.kind, f.subject): f for f in facts}
    name = {s: w for s, w in domain["tasks"] + domain["costs"] + domain["events"]}
    decisions = []
    for f in facts:
        if f.kind == "amount":
            decisions.append(f"{int(f.value):,} {f.unit} approved for {name[f.subject]}.")
        elif f.kind == "date":
            month, day = f.value.split()
            decisions.append(f"{_cap(name[f.subject])} is on {month.title()} {day}.")
        elif f.kind == "decision":
            decisions.append(f"The {f.subject} is {f.value.title()}.")
    actions = [f"{f.value.title()}: {name[f.subject]}, due {by[('deadline', f.subject)].value.title()}."
               for f in facts if f.kind == "owner"]
    plural = lambda n, word: f"{n} {word}" + ("" if n == 1 else "s")  # noqa: E731
    overview = f"The meeting settled {plural(len(decisions), 'decision')} and {plural(len(actions), 'action item')}."
    return "\n".join([overview, "Decisions:", *(f"- {d}" for d in decisions), "Action items:",
                      *(f"- {a}" for a in actions)])


def _agenda(rng, domain, chair, others, long) -> list:
    """One domain's agenda items, each a call that says it and returns (turns, facts). A short meeting
    draws two tasks, a cost, an event and the choice (and says some of them); a long one says all."""
    tasks = domain["tasks"] if long else rng.sample(domain["tasks"], 2)
    costs, events = (domain["costs"], domain["events"]) if long else ((None,), (None,))
    return [*(lambda task=task: _action(rng, chair, others, task, rng.random() < 0.3) for task in tasks),
            *(lambda cost=cost: _cost(rng, chair, rng.choice(others), cost or rng.choice(domain["costs"]),
                                      rng.random() < 0.35, rng.choice(CURRENCIES)) for cost in costs),
            *(lambda event=event: _date(rng, chair, rng.choice(others), event or rng.choice(domain["events"]),
                                        rng.random() < 0.35) for event in events),
            lambda: _choice(rng, chair, rng.choice(others), domain["choice"], rng.random() < 0.35)]


def make_meeting(index: int, seed: int = 1000, long: bool = False) -> Meeting:
    """One training meeting: small talk, then agenda items in a seeded order, each with chatter. A long
    one (four to seven minutes) covers two or three domains and every item of each: more than six
    decisions and action items, as a real hour-long meeting has."""
    rng = random.Random(f"train-meeting{'-long' if long else ''}:{seed}:{index}")
    names = sorted(DOMAINS)
    picked = rng.sample(names, rng.choice((2, 3))) if long else [rng.choice(names)]
    domains = [DOMAINS[name] for name in picked]
    speakers = rng.sample(PEOPLE, rng.choice((3, 4, 5) if long else (2, 3, 3, 4)))
    chair, others = speakers[0], speakers[1:]
    greeting = rng.choice((f"Hi all, {chair} here, let's get going.", "Okay, shall we start?"))  # not always named
    turns = [(chair, greeting), *zip((others[0], chair), rng.choice(SMALL_TALK))]
    facts: list[Fact] = []
    items = [item for domain in domains for item in _agenda(rng, domain, chair, others, long)]
    rng.shuffle(items)
    for make in items if long else items[: rng.choice((2, 3, 4, 5))]:
        said, found = make()
        turns += said
        facts += found
        for _ in range(rng.randrange(1, 4) if long else rng.randrange(0, 3)):
            turns.append((rng.choice([s for s in speakers if s != turns[-1][0]]), rng.choice(CHATTER)))
    turns.append((chair, rng.choice(("Thanks, everyone.", "That's it for today, thanks.", "Great, talk soon."))))
    questions = sorted(facts, key=lambda f: not f.superseded)[:2]
    words = sum(len(text.split()) for _, text in turns)
    names_of = {key: sum((tuple(d[key]) for d in domains), ()) for key in ("tasks", "costs", "events")}
    return Meeting(f"notes-train-{'long-' if long else ''}{seed}-{index:05d}", round(words / 150, 1), speakers, turns,
                   facts, questions, notes_of(facts, names_of))


def written_notes(notes: str) -> str:
    """Reference notes in the form the notes LM writes them (`models.notes.notes_prompt`): decisions,
    "Owner: task, due day" items, then a summary of the first decision and the first item."""
    decisions, actions = section(notes, "Decisions"), section(notes, "Action items")
    said = []
    for line in actions[:1]:
        owner, _, rest = line.partition(": ")
        task, _, due = rest.rstrip(".").partition(", due ")
        said.append(f"{owner} does {task} by {due}.")
    summary = " ".join(decisions[:1] + said) or "Nothing was settled."
    return "\n".join(["Decisions:", *(f"- {d}" for d in decisions), "Action items (owner: task, due date):",
                      *(f"- {a}" for a in actions), f"Summary: {summary}"])


def answer_line(notes: str, fact: Fact) -> str:
    """The line of the notes that states `fact` (its subject and its value): the answer to its question."""
    lines = [line[2:] for line in notes.splitlines() if line.startswith("- ")]
    return next(line for line in lines if fact.subject in line.lower() and fact.value in line.lower().replace(",", ""))


def meeting_items(n: int, seed: int = 1000) -> list[EvalItem]:
    """`n` generated meetings as training items: the notes for each, in the form every notes writer serves
    (`written_notes`: the teachers and the student learn the same one), and the answer to its first focus question."""
    items = []
    for i in range(n):
        meeting = make_meeting(i, seed)
        transcript = "\n".join(f"{who}: {text}" for who, text in meeting.turns)
        items.append(EvalItem(f"{meeting.id}-notes", NOTES_QUERY, transcript, written_notes(meeting.notes)))
        fact = meeting.questions[0]
        items.append(EvalItem(f"{meeting.id}-q0", fact.question, transcript, answer_line(meeting.notes, fact)))
    return items


def value_tokens(text: str) -> list[str]:
    """Words and numbers after Whisper's normalizer ("forty thousand pounds" -> "£40000" -> "40000")."""
    return [t.lstrip("$£€").rstrip(".") for t in normalize(text).split()]


def has_value(tokens: list[str], value: str, kind: str) -> bool:
    """Whether the tokens state `value` ("may 20" also as "may 20th")."""
    if kind == "date":
        month, day = value.split()
        return month in tokens and any(t in (day, f"{day}th", f"{day}st", f"{day}nd", f"{day}rd") for t in tokens)
    if " " in value:  # a vendor of several words
        return value in " ".join(tokens)
    return value in tokens


def fact_verdicts(text: str, meeting: Meeting) -> list[tuple[Fact, str]]:
    """Each fact of the meeting as `text` states it: "right", "wrong" or "absent". A sentence naming a
    fact's subject states it right with its value, wrong with its corrected value or another value of
    its kind in the meeting."""
    units = [(value_tokens(s), s.lower()) for s in sentences(text)]
    verdicts = []
    for fact in meeting.facts:
        others = {f.value for f in meeting.facts if f.kind == fact.kind} | {fact.superseded}
        if fact.kind == "owner":
            others |= {p.lower() for p in meeting.speakers}
        others -= {fact.value, ""}
        about = [tokens for tokens, lower in units if all(w in lower for w in fact.subject.split())]
        if any(has_value(tokens, fact.value, fact.kind) for tokens in about):
            verdicts.append((fact, "right"))
        elif any(has_value(tokens, other, fact.kind) for tokens in about for other in others):
            verdicts.append((fact, "wrong"))
        else:
            verdicts.append((fact, "absent"))
    return verdicts


def fact_score(text: str, meeting: Meeting) -> tuple[int, int]:
    """(facts stated right, facts stated wrong) in `text`."""
    found = [verdict for _, verdict in fact_verdicts(text, meeting)]
    return found.count("right"), found.count("wrong")


def spoken(meeting: Meeting, cache_dir: Path) -> Path:
    """The meeting spoken with the training voices, one per speaker (made once, then cached)."""
    from training.data.speech import SPEAKER_VOICES, speak

    text = "\n".join(f"{who}: {said}" for who, said in meeting.turns)
    return speak(EvalItem(meeting.id, "", text, ""), cache_dir, SPEAKER_VOICES)


def meeting_of(item: EvalItem) -> Meeting | None:
    """The generated meeting behind a training item (ids "notes-train-[long-]SEED-INDEX-..."), else None."""
    found = re.match(r"notes-train-(long-)?(\d+)-(\d+)", item.id)
    return make_meeting(int(found[3]), int(found[2]), long=bool(found[1])) if found else None
