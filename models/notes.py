"""Meeting notes: what was decided, and who does what by when, each linked to the moment it was said.

Notes come from two places, and every item ends up tied to a transcript sentence, with its time:
- the model's own notes, when it writes them in the form `notes_prompt` asks for ("Decisions:" and
  "Action items:" with "- Owner: task, due date" lines, then "Summary:"): an item is kept only where
  the transcript supports it (models.grounding), and linked to the sentence that shares most of its
  words; the rest go to "dropped" (a value the meeting took back, "Thursday, not Friday", is
  unsupported too). An action item's owner is the person asked who agreed ("Yusuf, maybe you?"
  "Sure."), whoever the model named: the untuned model often names the one who asked. Its due date
  is the one said in the exchange about its task, as finally corrected ("By Monday." "Well, Tuesday
  at the latest."); a date said only for another task goes to "dropped";
- the transcript itself (models.transcript_notes): decisions and agreed requests, as finally corrected.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from models.asr import Segment, sentence_units
from models.grounding import STOPWORDS, sentences, unsupported_terms, values
from models.transcript_notes import (
    NoteItem,
    asked_owner,
    content_stems,
    due_date,
    due_in_exchange,
    due_taken_back,
    exchange,
    from_transcript,
)

NOTES_SYSTEM = ("You write meeting notes from a transcript. Use only what the transcript says. Copy names, dates and "
                "amounts exactly as said. When a value is corrected later in the meeting, write only the corrected "
                "value.")
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

    def answer(self, query: str) -> str:
        """The item that answers a focus question, when the model's own answer had no support: the one
        that shares most content words with the question (the later on a tie), as one sentence, with
        the values it takes back cut ("June 12th now, not the 22nd." answers "June 12th now."); else ""."""
        asked = content_stems(query)
        best, most = None, 0
        for item in sorted(self.decisions + self.action_items, key=lambda i: i.start):
            shared = len(asked & content_stems(item.text))
            if shared and shared >= most:
                best, most = item, shared
        if best is None:
            return ""
        text = re.sub(r"(?:,|\.)\s*(?i:not) (?:the )?[^,.;:!?]+", "", best.text).rstrip(" .")
        if best.owner:
            text = f"{best.owner}: {text[:1].lower() + text[1:]}" + (f", due {best.due}" if best.due else "")
        return text + "."



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
    words = content_stems(text)
    best = max(units, key=lambda u: len(words & content_stems(u.text)), default=None)
    return best if best is not None and words & content_stems(best.text) else None


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
    "Actually, make that Thursday, not Friday."; "By Monday." "Well, Tuesday at the latest.") replaced
    by the one that holds; the exchange is the item's sentence and those after it up to the next request."""
    due = due_date(_split_action(line)[1] or line)
    new = due
    for unit in units[at : exchange(units, at)[1]] if due else []:
        new = due_taken_back(new, unit.text) or new
    return _with_due(line, due, new)


def _with_due(line: str, due: str, new: str) -> str:
    """`line` with its (last) due date `due` written as `new`."""
    if new == due:
        return line
    head, _, tail = line.rpartition(due)
    return f"{head}{new}{tail}"


def _without_stray_due(line: str, units: list[Segment], at: int) -> str:
    """`line` with the due date its exchange says in place of one it never says (a date the model took
    from another task, or guessed where the recognizer lost the day), or without it where the exchange
    says none; else `line` as it is."""
    due = due_date(_split_action(line)[1] or line)
    start, end = exchange(units, at)
    said = " ".join(u.text for u in units[start:end])
    if not due or due.lower() in said.lower() or set(values(due)) <= set(values(said)) and values(due):
        return line
    if said_due := due_in_exchange(units, start, units[start].text):
        return _with_due(line, due, said_due)
    cut = re.sub(rf",?\s*(?:\b(?:due|by|on|before|until)\s+)?{re.escape(due)}\b", "", line, count=1, flags=re.I)
    return cut.rstrip(" ,.") + "."


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
                    dropped.append(f"{line} (its due date was taken back: {due_date(corrected)} instead)")
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
            if title == "Action items" and (kept := _without_stray_due(line, units, units.index(at))) != line:
                said = f": {due_date(kept)} was" if due_date(kept) else ""
                dropped.append(f"{line} (its due date was not said with its task{said})")
                line = kept
            owner, task = _split_action(line) if title == "Action items" else ("", line)
            text = (task or line).strip()
            due = due_date(text)
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
        named = {p for p in people if p and re.search(rf"\b{re.escape(p)}\b", sentence)}
        words = content_stems(sentence)
        clash = any(a.owner and a.owner not in named and named - {a.owner} and len(words & content_stems(a.text)) >= 2
                    for a in actions)
        (dropped if clash else kept).append(sentence)
    return " ".join(kept), dropped


def meeting_notes(overview: str, generated: str, segments: list[Segment], source: str,
                  names: dict[str, str] | None = None) -> Notes:
    """The notes of a summary: the model's supported items, else the transcript's own. The model misses
    some, so its action items also get the requests someone agreed to that none of them covers, and its
    decisions the questions asked and answered ("Is the date fixed?" "It's the 22nd of August."); not
    the transcript's other decisions or first-person "I'll ..." sentences, which quote chatter more often."""
    decisions, actions, dropped = from_model(generated, segments, source)
    quoted_decisions, quoted_actions = from_transcript(segments, names, agreed_only=bool(actions),
                                                       answered_only=bool(decisions))
    if actions:
        quoted_actions = _with_missed(actions, quoted_actions)
    if decisions:
        decisions = _with_missed(decisions, quoted_decisions)
    return Notes(overview, decisions or quoted_decisions, quoted_actions, dropped)


def _with_missed(items: list[NoteItem], quoted: list[NoteItem]) -> list[NoteItem]:
    """The model's items and the quoted ones that none of them covers, in the order they were said."""
    missed = [q for q in quoted if not any(_covers(i, q) for i in items)]
    return sorted(items + missed, key=lambda i: i.start)


def _covers(item: NoteItem, other: NoteItem) -> bool:
    """Whether two items are the same one: said in overlapping moments, or two content words in common."""
    return (item.start < other.end and other.start < item.end) or \
        len(content_stems(item.text) & content_stems(other.text)) >= 2


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
