"""Meeting notes: what was decided, and who does what by when, each linked to the moment it was said.

Notes come from two places, and every item ends up tied to a transcript sentence, with its time:
- the model's own notes, when it writes them in the form `notes_prompt` asks for ("Decisions:" and
  "Action items:" with "- Owner: task, due date" lines, then "Summary:"): an item is kept only where
  the transcript supports it (models.grounding), and linked to the sentence that shares most of its
  words; the rest go to "dropped" (a value the meeting took back, "Thursday, not Friday", is
  unsupported too). An action item's owner is the person asked who agreed ("Yusuf, maybe you?"
  "Sure."), whoever the model named: the untuned model often names the one who asked;
- the transcript itself: a sentence with a decision cue ("decided", "agreed", "approved", "go with",
  "moved to") is a decision, with the value it points back to ("we approve that": the amount said
  just before). A request someone agreed to ("Marco, could you pick up the guest list?" "Sure.") is
  an action item, written as its task and owned by the person asked; so is a sentence in which the
  speaker or a named person commits to a task ("I'll fix the login bug by March 7."). It is due when
  a day or date is said with it, in the reply, or in the exchange about it that follows ("When can
  the guest list be ready?" "By Monday."), as finally corrected. A later sentence about the same
  thing wins over an earlier one, so a correction wins.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from models.asr import Segment, sentence_units
from models.grounding import STOPWORDS, correction_of, sentences, stem, unsupported_terms

MAX_ITEMS = 6  # decisions and action items quoted from the transcript (the model's own notes are not cut)
DECISION = re.compile(r"\b(decided|decision|agreed|agree|approved?|go(?:ing)? with|moves? to|moved to|confirmed|"
                      r"final(?:ly)?|settled|chose|chosen|picked)\b", re.I)
COMMITMENT = re.compile(r"\b(I'll|I will|I can take|I'm going to|I am going to|leave it with me|can you|could you|"
                        r"will you|would you|owns?|is going to|will)\b", re.I)
ASKED = re.compile(r"^(?P<name>[A-Z][a-z]+), (?:can|could|would|will) you\b")
NAMED_WILL = re.compile(r"\b(?P<name>[A-Z][a-z]+) (?:will|is going to|owns|takes)\b")
DAYS = "monday|tuesday|wednesday|thursday|friday|saturday|sunday"
MONTHS = "january|february|march|april|may|june|july|august|september|october|november|december"
DUE = re.compile(rf"\b(?:by |on |before |until )?(?:(?:next |this )?(?:{DAYS})|(?:{MONTHS}) \w+(?:st|nd|rd|th)?|"
                 rf"(?:the )?\w+(?:st|nd|rd|th) of (?:{MONTHS})|tomorrow|next week|end of (?:the )?(?:week|month))\b",
                 re.I)
ADDRESSED = re.compile(r"(?:^|,\s*)(?P<name>[A-Z][a-z]+),? (?:can|could|would|will) you\b|"
                       r"(?P<maybe>[A-Z][a-z]+),? maybe you\b|,\s*(?P<tail>[A-Z][a-z]+)\?\s*$")
REQUEST = re.compile(r"\b(?:can|could|would|will) you\b|\bmaybe you\b", re.I)
AGREES = re.compile(r"^(?:sure|yes|yeah|ok(?:ay)?|happy to|will do|of course|no problem)\b|\bI'll\b|leave it with me",
                    re.I)
CORRECTION = re.compile(r"\b(actually|correction|sorry|not|instead|make that|moved)\b", re.I)
BACK_REFERENCE = re.compile(r"\b(that|it|this)\b", re.I)
VALUE = re.compile(rf"\d|\b(?:{DAYS}|{MONTHS})\b|\b(?:hundred|thousand|million)\b", re.I)
MAKE_THAT = re.compile(r"\bmake (?:that|it|at) ([^,.;!?]+)", re.I)
WHEN = re.compile(r"\b(?:when|by when|what day|which day|how soon)\b", re.I)


NOTES_SYSTEM = ("You write meeting notes from a transcript. Use only what the transcript says. Copy names, dates and "
                "amounts exactly as said. When a value is corrected later in the meeting, write only the corrected value.")
# One worked example shows the form and a correction winning; untuned, the 1.5B model otherwise
# writes a paragraph. Its people, tasks and values are in neither generator of meetings.
NOTES_EXAMPLE = """Transcript:
Speaker 1: Morning. First, the kitchen refit. The quote was 4,000 dollars.
Speaker 2: Actually the final quote is 4,500 dollars, not 4,000.
Speaker 1: Fine, we approve 4,500 for the kitchen refit. Jo, can you book the plumber?
Speaker 2: Sure, I'll book him by Wednesday.
Speaker 1: And the open day is on the 3rd of June.

Notes:
Decisions:
- 4,500 dollars approved for the kitchen refit.
- The open day is on June 3.
Action items (owner: task, due date):
- Jo: book the plumber, due Wednesday.
Summary: The kitchen refit was approved at 4,500 dollars, and Jo books the plumber by Wednesday."""


# What the student is asked, after the audio, for a recording's notes (it learns on it: training.data.meetings).
NOTES_QUERY = "Write the meeting notes: decisions, and action items with owner and due date."


def notes_prompt(text: str) -> list[dict[str, str]]:
    """The chat that asks an instruct LM for the notes of a transcript (a focus question is asked apart)."""
    return [{"role": "system", "content": NOTES_SYSTEM},
            {"role": "user", "content": f"Example:\n{NOTES_EXAMPLE}\n\nNow the real meeting.\nTranscript:\n{text}"
                                        "\n\nWrite its notes in the same form (Decisions, Action items, Summary)."}]


def answer_prompt(text: str, query: str) -> list[dict[str, str]]:
    """The chat that asks for the value a focus question wants, from the transcript or a long one's notes."""
    return [{"role": "system", "content": NOTES_SYSTEM},
            {"role": "user", "content": f"{text}\n\nQuestion: {query}\nAnswer in one sentence that states the "
                                        "exact value (name, amount or date), as finally agreed."}]


def merge_notes(parts: list[str]) -> str:
    """The notes of a recording's chapters as one: their decisions and action items (each once), the
    summaries joined."""
    if len(parts) == 1:
        return parts[0]
    decisions = dict.fromkeys(f"- {line}" for part in parts for line in section(part, "Decisions"))
    actions = dict.fromkeys(f"- {line}" for part in parts for line in section(part, "Action items"))
    overviews = " ".join(overview_of(part) for part in parts)
    return "\n".join(["Decisions:", *decisions, "Action items:", *actions, f"Summary: {overviews}"])


def overview_of(generated: str) -> str:
    """The "Summary:" part of notes the model wrote (empty when it wrote none)."""
    found = re.search(r"^Summary:\s*(.+(?:\n(?![A-Z][\w ()/,:]*:\s*$).+)*)", generated, re.M)
    return " ".join(found.group(1).split()) if found else ""


@dataclass
class NoteItem:
    text: str
    start: float
    end: float
    speaker: str = ""
    owner: str = ""  # action items: who does it
    due: str = ""  # action items: by when, as said


@dataclass
class Notes:
    overview: str
    decisions: list[NoteItem] = field(default_factory=list)
    action_items: list[NoteItem] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)  # the model's items the transcript does not support

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict | None) -> Notes | None:
        if not raw:
            return None
        items = lambda key: [NoteItem(**i) for i in raw.get(key, [])]  # noqa: E731
        return cls(raw.get("overview", ""), items("decisions"), items("action_items"), raw.get("dropped", []))


def _stems(text: str) -> set[str]:
    return {stem(w) for w in re.findall(r"[a-z][a-z'-]+|\d[\d,.]*", text.lower()) if w not in STOPWORDS}


def _due(*texts: str) -> str:
    for text in texts:
        found = DUE.search(text)
        if found:
            return re.sub(r"^(by|on|before|until) ", "", found.group(0), flags=re.I)
    return ""


def _owner(unit: Segment, names: dict[str, str]) -> str:
    asked = ASKED.match(unit.text) or NAMED_WILL.search(unit.text)
    if asked and asked.group("name").lower() not in STOPWORDS:
        return asked.group("name")
    if re.search(r"\b(I'll|I will|I can take|I'm going to|I am going to|leave it with me)\b", unit.text, re.I):
        return names.get(unit.speaker, unit.speaker)
    return ""


def asked_owner(units: list[Segment], at: int) -> str:
    """Who was asked, in sentence `at` or the one before, to do the task said there and agreed in the
    next sentence ("Who takes the release notes, Yusuf, maybe you?" "Sure, I'll do it."): the owner,
    whoever asked (by name, else the voice that agreed); else ""."""
    for i in range(max(0, at - 1), min(len(units) - 1, at + 1)):
        asked, reply = ADDRESSED.search(units[i].text), units[i + 1]
        if not AGREES.search(reply.text):
            continue
        if not asked and i > 0 and units[i - 1].speaker == units[i].speaker:  # "Take the layout, Yusuf?" "Maybe you?"
            asked = ADDRESSED.search(units[i - 1].text)
        if asked and (name := asked["name"] or asked["maybe"] or asked["tail"]).lower() not in STOPWORDS:
            return name
        if REQUEST.search(units[i].text) and reply.speaker and reply.speaker != units[i].speaker:
            return reply.speaker  # a name the recognizer lost ("When, could you"): who agreed, by voice
    return ""


def _latest_per_topic(items: list[NoteItem]) -> list[NoteItem]:
    """Of items about the same thing (half their content words shared, the owner's name not counted),
    the later one: a correction wins."""
    kept: list[NoteItem] = []
    for item in items:
        words = _stems(item.text) - _stems(item.owner)
        same = [k for k in kept if len(words & _stems(k.text)) >= max(2, len(words) // 2)
                and (CORRECTION.search(item.text) or k.owner == item.owner)]
        kept = [k for k in kept if k not in same] + [item]
    return kept


def _with_its_value(units: list[Segment], at: int) -> NoteItem:
    """A decision as said; one that points back ("we approve that for the deposit") with the value it
    points at, said in the sentence before ("Fine, we approve that for the deposit: $7,500."), and a
    bare agreement ("Agreed.") after what it agrees to."""
    unit, before = units[at], units[at - 1] if at > 0 else None
    if before is not None and len(_stems(unit.text)) < 3:
        return NoteItem(f"{before.text} {unit.text}", before.start, unit.end, unit.speaker)
    if before is not None and BACK_REFERENCE.search(unit.text) and not VALUE.search(unit.text) \
            and VALUE.search(before.text):
        return NoteItem(f"{unit.text.rstrip('.!')}: {before.text}", before.start, unit.end, unit.speaker)
    return NoteItem(unit.text, unit.start, unit.end, unit.speaker)


def _due_in_exchange(units: list[Segment], at: int, task: str) -> str:
    """The due date of the task asked in sentence `at`: said with it or in the reply, else in the
    exchange that follows about the same task ("When can the guest list be ready?" "By Monday."),
    as finally corrected ("Actually, make that Friday, not Monday.")."""
    window = units[at : at + 6]
    ends = [k for k in range(2, len(window)) if REQUEST.search(window[k].text)]  # the next task's request
    window = window[: ends[0]] if ends else window
    due, since = _due(*(u.text for u in window[:2])), 1
    if not due:
        words = _stems(task)
        for k, unit in enumerate(window[2:-1], start=2):
            if WHEN.search(unit.text) and len(words & _stems(unit.text)) >= 1 and _due(window[k + 1].text):
                due, since = _due(window[k + 1].text), k + 1
                break
    for unit in window[since:]:
        due = _due_taken_back(due, unit.text) or due
    return due


def _due_taken_back(due: str, text: str) -> str:
    """The due date `text` puts in place of `due` ("Actually, make that Friday, not Monday."; "make at
    Friday not Monday", as the recognizer may write it; "make that Friday" where it misheard the old
    day), else ""."""
    instead = re.search(rf"(\w+),?\s+not (?:the )?{re.escape(due)}\b", text, re.I) if due else None
    fixed = MAKE_THAT.search(text)
    return (_due(correction_of(due, text)) or _due(instead.group(1) if instead else "")
            or _due(fixed.group(1) if fixed else ""))


def _task_of(request: str) -> str:
    """What a request asks done, as a note says it: "Marco, could you pick up the guest list?" and "Who
    can take the release notes, Yusuf, maybe you?" give "Pick up the guest list." and "Take the release
    notes."; a sentence that is no request stays as said."""
    found = re.search(r"\b(?:can|could|would|will) you (?:please )?(?P<task>[^?]+)", request, re.I) or \
        re.search(r"\bwho (?:can|could|will|wants to) (?P<task>[^?,]+)", request, re.I)
    if not found:
        return request
    task = found["task"].strip(" ,.")
    return task[:1].upper() + task[1:] + "."


def from_transcript(segments: list[Segment], names: dict[str, str] | None = None) -> tuple[list[NoteItem],
                                                                                         list[NoteItem]]:
    """(decisions, action items) quoted from the transcript's sentences, with their times. An action item
    is a request someone agreed to ("Marco, could you pick up the guest list?" "Sure."), or a sentence
    in which the speaker or a named person commits to a task; an agreement alone ("Sure, I'll do it.")
    is not one."""
    names = names or {}
    units = sentence_units(segments)
    decisions, actions = [], []
    for i, unit in enumerate(units):
        reply = units[i + 1] if i + 1 < len(units) else None
        if DECISION.search(unit.text) and not unit.text.rstrip().endswith("?"):
            decisions.append(_with_its_value(units, i))
        elif REQUEST.search(unit.text) and reply is not None and AGREES.search(reply.text):
            task = units[i - 1] if len(_stems(unit.text)) < 3 and i > 0 else unit  # "Who can take X?" "Zoe, maybe you?"
            owner = asked_owner(units, i) or reply.speaker
            owner = names.get(owner, owner)  # a voice the user named
            actions.append(NoteItem(_task_of(task.text), task.start, reply.end, task.speaker, owner,
                                    _due_in_exchange(units, i, task.text)))
        elif COMMITMENT.search(unit.text) and len(_stems(unit.text)) >= 3 and not REQUEST.search(unit.text):
            owner = _owner(unit, names)
            if owner:
                actions.append(NoteItem(unit.text, unit.start, unit.end, unit.speaker, owner,
                                        _due_in_exchange(units, i, unit.text)))
    return _latest_per_topic(decisions)[-MAX_ITEMS:], _latest_per_topic(actions)[-MAX_ITEMS:]


HEADINGS = re.compile(r"^[ \t]*(?:Decisions|Action items(?: \([^)\n]*\))?|Summary)[ \t]*:", re.I | re.M)


def without_headings(text: str) -> str:
    """Notes as what they state: without "Decisions:", "Action items (owner: task, due date):" and
    "Summary:", which a check that reads capitalized words as names would count as invented."""
    return HEADINGS.sub("", text)


def section(text: str, title: str) -> list[str]:
    """The "- ..." lines under a "Title:" line of the model's notes."""
    found = re.search(rf"^{title}[^\n]*:\s*\n((?:\s*[-*].*\n?)*)", text, re.I | re.M)
    return [line.strip().lstrip("-*").strip() for line in found.group(1).splitlines() if line.strip()] if found else []


def _anchor(text: str, units: list[Segment]) -> Segment | None:
    """The transcript sentence that shares most content words with `text` (None when none shares any)."""
    words = _stems(text)
    best = max(units, key=lambda u: len(words & _stems(u.text)), default=None)
    return best if best is not None and words & _stems(best.text) else None


def _split_action(line: str) -> tuple[str, str]:
    """(owner, task) of a model's "Owner: task" line, without a remark ("Rosa (owner)", "Emeka, also");
    "Owner, task" also counts. ("", "") when the line names no owner."""
    owner, colon, task = line.partition(":")
    if not colon:
        found = re.match(r"([A-Z][a-z]+), (.+)", line)
        if not found or found.group(1).lower() in STOPWORDS:
            return "", ""
        owner, task = found.groups()
    return re.sub(r"\s*\(.*?\)", "", owner).split(",")[0].strip(), task.strip()


def _without_due(line: str) -> str:
    """An action item's line without its ", due ..." part."""
    return re.sub(r",?\s*\bdue\b[^,]*$", "", line).rstrip(" ,.") + "."


def _supported_part(line: str, source: str) -> tuple[str, str]:
    """An action item's line without the parts the transcript does not support, when only its due date
    or its owner is (a date never said, a name from nowhere): (the line kept, what was cut), else (line, "")."""
    task = _split_action(line)[1]
    for kept, cut in ((_without_due(line), "its due date"), (task, "its owner"),
                      (_without_due(task) if task else "", "its owner and due date")):
        if kept and kept != line and not unsupported_terms(kept, source):
            return kept, cut
    return line, ""


def _corrected_due(line: str, units: list[Segment], at: int) -> str:
    """`line` with a due date that the exchange about its task took back ("By Friday, I think."
    "Actually, make that Thursday, not Friday.") replaced by the one that replaced it; the exchange is
    the item's sentence and the four after it."""
    due = _due(_split_action(line)[1] or line)
    for unit in units[at : at + 5] if due else []:
        new = _due(correction_of(due, unit.text))
        if new:
            head, _, tail = line.rpartition(due)
            return f"{head}{new}{tail}"
    return line


def from_model(generated: str, segments: list[Segment], source: str) -> tuple[list[NoteItem], list[NoteItem],
                                                                              list[str]]:
    """(decisions, action items, dropped) of notes the model wrote in the trained form, each supported
    by the transcript and linked to its sentence; an unsupported or unplaceable item is dropped. An
    action item whose only unsupported values are its due date (one never said, or taken back) or its
    owner keeps its task without them: they go to "dropped"."""
    units, dropped = sentence_units(segments), []
    out: dict[str, list[NoteItem]] = {"Decisions": [], "Action items": []}
    for title, found in out.items():
        for line in dict.fromkeys(section(generated, title)):  # an item written twice counts once
            at = _anchor(line, units)
            if at is not None and title == "Action items":
                corrected = _corrected_due(line, units, units.index(at))
                if corrected != line:
                    dropped.append(f"{line} (its due date was taken back: {_due(corrected)} instead)")
                    line = corrected
            unsupported = at is not None and unsupported_terms(line, source)
            if unsupported and title == "Action items":
                kept, cut = _supported_part(line, source)
                if cut:
                    dropped.append(f"{line} ({cut} dropped, the task kept)")
                    line, unsupported = kept, []
            if at is None or unsupported:
                dropped.append(line)
                continue
            owner, task = _split_action(line) if title == "Action items" else ("", line)
            text = (task or line).strip()
            due = _due(text)
            if title == "Action items":
                # the model named who asked, no one, or a name the recording does not tie to the task
                owner = asked_owner(units, units.index(at)) or owner
                if re.search(r"\bdue\b", text):  # "book the plumber, due Wednesday": the date has its own
                    text = _without_due(text)  # field, a non-date goes
            found.append(NoteItem(text[:1].upper() + text[1:], at.start, at.end, at.speaker, owner, due))
    return out["Decisions"], out["Action items"], dropped


def owners_agree(overview: str, generated: str, actions: list[NoteItem]) -> tuple[str, list[str]]:
    """The overview without the sentences that give a task of the notes to someone other than its
    owner: the notes' owners are checked against who was asked (`asked_owner`), the overview's
    prose is not. Returns (kept overview, dropped sentences)."""
    people = {a.owner for a in actions} | {_split_action(line)[0] for line in section(generated, "Action items")}
    kept, dropped = [], []
    for sentence in sentences(overview):
        named, words = {p for p in people if p and re.search(rf"\b{re.escape(p)}\b", sentence)}, _stems(sentence)
        clash = any(a.owner and a.owner not in named and named - {a.owner} and len(words & _stems(a.text)) >= 2
                    for a in actions)
        (dropped if clash else kept).append(sentence)
    return " ".join(kept), dropped


def meeting_notes(overview: str, generated: str, segments: list[Segment], source: str,
                  names: dict[str, str] | None = None) -> Notes:
    """The notes of a summary: the model's supported items, else the transcript's own."""
    decisions, actions, dropped = from_model(generated, segments, source)
    quoted = from_transcript(segments, names)
    return Notes(overview, decisions or quoted[0], actions or quoted[1], dropped)


def markdown(notes: Notes, stamp: Callable[[float], str]) -> str:
    """The notes as the page and the Markdown export show them, each item with its time as `stamp`
    writes it ("[00:35]", or a link that moves the page's player there)."""
    def action(a: NoteItem) -> str:
        owner = f"**{a.owner}**: " if a.owner else ""
        return f"- {stamp(a.start)} {owner}{a.text}" + (f" (due {a.due})" if a.due else "")

    parts = []
    if notes.decisions:
        parts.append("\n".join(["**Decisions**", *(f"- {stamp(d.start)} {d.text}" for d in notes.decisions)]))
    if notes.action_items:
        parts.append("\n".join(["**Action items**", *map(action, notes.action_items)]))
    return "\n\n".join(parts)
