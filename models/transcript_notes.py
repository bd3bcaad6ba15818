"""Notes read off the transcript itself: the exchanges that make a meeting's decisions and action items.

A question asked and answered is a decision, as finally settled ("So which venue do we go with?"
"Greenway Hall." "Agreed, Greenway Hall it is."; "Is the date fixed?" "The 9th." ... "The 12th now,
not the 9th."). So is a sentence with a decision cue ("decided", "agreed", "approved", "go with",
"moved to"), with the value it points back to ("we approve that": the amount said just before). A request someone
agreed to ("Marco, could you pick up the guest list?" "Sure.") is an action item, written as its task
and owned by the person asked; so is a sentence in which the speaker or a named person commits to a
task ("I'll fix the login bug by March 7."). It is due when a day or date is said with it, in the
reply, or in the exchange about it that follows ("When can the guest list be ready?" "By Monday."),
as finally corrected ("Actually, make that Friday, not Monday."; "Well, Tuesday at the latest.").
`exchange` bounds that talk: from the task's request to the next one. A later sentence about the
same thing wins over an earlier one, so a correction wins. The model's notes (models.notes) fall back
to these items, and read who was asked (`asked_owner`) and the due dates (`due_date`) here too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from models.asr import Segment, sentence_units
from models.grounding import STOPWORDS, correction_of, stem

# Decisions and action items quoted from the transcript, each: at least this many, or one per this many sentences
# of a long meeting (the model's own notes are not cut, nor are questions answered).
MAX_ITEMS, SENTENCES_PER_ITEM = 6, 15
DECISION = re.compile(r"\b(decided|decision|agreed|agree|approved?|go(?:ing)? with|moves? to|moved to|confirmed|"
                      r"final(?:ly)?|settled|chose|chosen|picked)\b", re.I)
COMMITMENT = re.compile(r"\b(I'll|I will|I can take|I'm going to|I am going to|leave it with me|can you|could you|"
                        r"will you|would you|owns?|is going to|will)\b", re.I)
ASKED = re.compile(r"^(?P<name>[A-Z][a-z]+), (?:can|could|would|will) you\b")
NAMED_WILL = re.compile(r"\b(?P<name>[A-Z][a-z]+) (?:will|is going to|owns|takes)\b")
DAYS = "monday|tuesday|wednesday|thursday|friday|saturday|sunday"
MONTHS = "january|february|march|april|may|june|july|august|september|october|november|december"
DUE = re.compile(rf"\b(?:by |on |before |until )?(?:(?:next |this )?(?:{DAYS})|(?:{MONTHS}) \w+(?:st|nd|rd|th)?|"
                 rf"(?:the )?\w+(?:st|nd|rd|th) of (?:{MONTHS})|today|tonight|tomorrow|"
                 rf"this (?:morning|afternoon|evening)|next week|end of (?:the )?(?:day|week|month))\b", re.I)
ADDRESSED = re.compile(r"(?:^(?:(?i:and|so|okay|ok|right|then|also),? )?|,\s*)(?P<name>[A-Z][a-z]+),? "
                       r"(?:can|could|would|will) you\b|"
                       r"(?P<maybe>[A-Z][a-z]+),? maybe you\b|,\s*(?P<tail>[A-Z][a-z]+)\?\s*$")
REQUEST = re.compile(r"\b(?:can|could|would|will) you\b|\bmaybe you\b", re.I)
AGREES = re.compile(r"^(?:sure|yes|yeah|ok(?:ay)?|happy to|will do|of course|no problem)\b|\bI'll\b|leave it with me",
                    re.I)
CORRECTION = re.compile(r"\b(actually|correction|sorry|not|instead|make that|moved)\b", re.I)
BACK_REFERENCE = re.compile(r"\b(that|it|this)\b", re.I)
VALUE = re.compile(rf"\d|\b(?:{DAYS}|{MONTHS})\b|\b(?:hundred|thousand|million)\b", re.I)
MAKE_THAT = re.compile(r"\bmake (?:that|it|at) ([^,.;!?]+)", re.I)
# A later day said as the one that holds ("Well, Tuesday at the latest." "Tuesday then." "Thursday instead.").
LATER = re.compile(rf"\b(?:actually|or rather|instead|at the latest)\b|^(?:well|no),? |"
                   rf"^(?:(?:ok(?:ay)?|so|fine|right),? )?"
                   rf"(?:(?:next |this )?(?:{DAYS})|(?:{MONTHS}) \w+|the \w+) then\b", re.I)
WHEN = re.compile(r"\b(?:when|by when|what day|which day|how soon)\b", re.I)
# A sentence of one capitalized word is a name said on its own ("Freya." "Right, Joe."), unless it is one of these.
LONE_NAME = re.compile(r"^(?:(?i:right|okay|ok|so|and),? )?([A-Z][a-z]+)[.!]?$")
NOT_A_NAME = re.compile(r"^(?:sure|great|good|fine|hi|hello|perfect|agreed|cool|nice|anyway|sorry|actually|exactly|"
                        r"true|thanks|wait|hmm|um|uh|oh|morning|alright|absolutely|definitely|later)$", re.I)
# A question that asks which one, how much or when ("So which venue do we go with?" "Is the date fixed?"), not
# when a task will be done (the action items' due dates), and the words that settle its answer.
ASKS_VALUE = re.compile(r"\b(?:which|what|when|how much|how many|date|go with)\b", re.I)
# A yes-or-no question about a value that the recognizer may write without "?" ("Is the date fixed.").
IS_IT_SET = re.compile(r"\b(?:is|are) the \w+(?: \w+)? (?:fixed|set|confirmed|final|decided|agreed|booked)\b", re.I)
TASK_DONE = re.compile(r"\b(?:ready|done|due|finished|back to)\b", re.I)
SETTLES = re.compile(r"\b(?:it is|then|now|not|agreed|actually|instead|confirmed|make (?:that|it)|let's say|"
                     r"change[ds]? (?:it |that )?to|moved? to|updated?|revised|in the end|after all|so it's|"
                     r"sorry,? (?:it's|it is|that's|that is|\$?\d))",
                     re.I)


@dataclass
class NoteItem:
    text: str
    start: float
    end: float
    speaker: str = ""
    owner: str = ""  # action items: who does it
    due: str = ""  # action items: by when, as said


def content_stems(text: str) -> set[str]:
    """The stems of a text's content words and numbers: what two sentences about one thing share."""
    return {stem(w) for w in re.findall(r"[a-z][a-z'-]+|\d[\d,.]*", text.lower()) if w not in STOPWORDS}


def due_date(*texts: str) -> str:
    """The first day or date said in `texts`, without its "by"/"on" ("by next Friday": "next Friday"); else ""."""
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
            asked = ADDRESSED.search(units[i - 1].text) or LONE_NAME.match(units[i - 1].text.strip())
        if asked:
            name = next(group for group in asked.groups() if group)  # the one of ADDRESSED's forms, or the lone name
            if name.lower() not in STOPWORDS and not NOT_A_NAME.match(name):
                return name
        if REQUEST.search(units[i].text) and reply.speaker and reply.speaker != units[i].speaker:
            return reply.speaker  # a name the recognizer lost ("When, could you"): who agreed, by voice
    return ""


def _latest_per_topic(items: list[NoteItem]) -> list[NoteItem]:
    """Of items about the same thing (half their content words shared, the owner's name not counted),
    the later one: a correction wins."""
    kept: list[NoteItem] = []
    for item in items:
        words = content_stems(item.text) - content_stems(item.owner)
        same = [k for k in kept if len(words & content_stems(k.text)) >= max(2, len(words) // 2)
                and (CORRECTION.search(item.text) or k.owner == item.owner)]
        kept = [k for k in kept if k not in same] + [item]
    return kept


def _with_its_value(units: list[Segment], at: int) -> NoteItem:
    """A decision as said; one that points back ("we approve that for the deposit") with the value it
    points at, said in the sentence before ("Fine, we approve that for the deposit: $7,500."), and a
    bare agreement ("Agreed.") after what it agrees to."""
    unit, before = units[at], units[at - 1] if at > 0 else None
    if before is not None and len(content_stems(unit.text)) < 3:
        return NoteItem(f"{before.text} {unit.text}", before.start, unit.end, unit.speaker)
    if before is not None and BACK_REFERENCE.search(unit.text) and not VALUE.search(unit.text) \
            and VALUE.search(before.text):
        return NoteItem(f"{unit.text.rstrip('.!')}: {before.text}", before.start, unit.end, unit.speaker)
    return NoteItem(unit.text, unit.start, unit.end, unit.speaker)


def due_in_exchange(units: list[Segment], at: int, task: str) -> str:
    """The due date of the task asked in sentence `at`: said with it or in the reply, else in the
    exchange that follows about the same task ("When can the guest list be ready?" "By Monday."),
    as finally corrected ("Actually, make that Friday, not Monday.")."""
    window = units[at : at + 6]
    ends = [k for k in range(2, len(window)) if REQUEST.search(window[k].text)]  # the next task's request
    window = window[: ends[0]] if ends else window
    due, since = due_date(*(u.text for u in window[:2])), 1
    if not due:
        words = content_stems(task)
        for k, unit in enumerate(window[2:-1], start=2):
            if WHEN.search(unit.text) and len(words & content_stems(unit.text)) >= 1 and due_date(window[k + 1].text):
                due, since = due_date(window[k + 1].text), k + 1
                break
    for unit in window[since:]:
        due = due_taken_back(due, unit.text) or due
    return due


def due_taken_back(due: str, text: str) -> str:
    """The due date `text` puts in place of `due` ("Actually, make that Friday, not Monday."; "make at
    Friday not Monday", as the recognizer may write it; "make that Friday" where it misheard the old
    day; "Well, Tuesday at the latest."; "Tuesday then."), else ""."""
    instead = re.search(rf"(\w+),?\s+not (?:the )?{re.escape(due)}\b", text, re.I) if due else None
    fixed = MAKE_THAT.search(text)
    kept = re.sub(r"\bnot (?:the )?\w+", "", text, flags=re.I)  # "Thursday, not Tuesday" holds Thursday only
    later = [d for d in map(due_date, DUE.findall(kept)) if _day(d) != _day(due)] if due and LATER.search(text) else []
    return (due_date(correction_of(due, text)) or due_date(instead.group(1) if instead else "")
            or due_date(fixed.group(1) if fixed else "") or (later[-1] if later else ""))


def _day(due: str) -> str:
    return re.sub(r"^(?:next|this) ", "", due.lower())


def exchange(units: list[Segment], at: int) -> tuple[int, int]:
    """The sentences (start, end) of the exchange about the task said in sentence `at`: from its request
    (`at` itself, or one of the three before it about the same thing) to the next task's request, at most
    six sentences on; a short request ("Amir, maybe you?") still asks for the task said before it."""
    def asks(i: int) -> bool:
        return bool(REQUEST.search(units[i].text)) and len(content_stems(units[i].text)) >= 3

    task = content_stems(units[at].text)
    start = next((i for i in range(at - 1, max(-1, at - 4), -1)
                  if asks(i) and len(task & content_stems(units[i].text)) >= 1), at)
    end = next((i for i in range(at + 1, min(len(units), at + 7)) if asks(i)), min(len(units), at + 7))
    return start, end


def _is_value_question(text: str) -> bool:
    """Whether a sentence asks which one, how much or when (not "what about X?", which offers one)."""
    asks = (text.rstrip().endswith("?") and ASKS_VALUE.search(text)) or IS_IT_SET.search(text)
    return (bool(asks) and not REQUEST.search(text)
            and not TASK_DONE.search(text) and not re.search(r"\bwhat about\b", text, re.I)
            and len(content_stems(text)) >= 2)


def _names(text: str) -> set[str]:
    """The capitalized words of a sentence that can be names ("Greenway", not "Sorry" or "The")."""
    return {w for w in re.findall(r"\b[A-Z][a-z]+\b(?!')", text)
            if w != "I" and w.lower() not in STOPWORDS and not NOT_A_NAME.match(w)}


def _kind(text: str) -> str:
    """The kind of value a sentence says: "date" (a day, a month, "the 20th"), "number", or ""."""
    if re.search(rf"\b(?:{DAYS}|{MONTHS})\b|\b\d+(?:st|nd|rd|th)\b", text, re.I):
        return "date"
    return "number" if VALUE.search(text) else ""


def answered(units: list[Segment], at: int) -> tuple[NoteItem, int] | None:
    """The decision that answers the question asked in sentence `at` ("So which bus company do we go
    with?" "Greenway Buses." ... "Agreed, Greenway Buses it is."), with the index of its last sentence.
    It reads as the question, then the answer as finally settled: the exchange's last sentence with a
    value of the answer's kind (a date for a date, a number for a number, else a name said in the
    answer or after it: "What about Coinbridge?" "Then Coinbridge, not Paylane.") that settles it
    ("it is", "then", "not", "now", "make that", "sorry, it's") or answers it asked again ("Is it still
    $8,000?" "It's $6,500."), else the answer itself; then a bare confirmation ("Fine, we approve
    that."). None unless the question asks which one, how much or when, and a value is given."""
    if not _is_value_question(units[at].text) or at + 1 >= len(units):
        return None
    asked = content_stems(units[at].text)
    answer = next((i for i in range(at + 1, min(len(units), at + 3)) if not units[i].text.rstrip().endswith("?")), None)
    if answer is None or REQUEST.search(units[answer].text):
        return None
    in_question, kind = _names(units[at].text), _kind(units[answer].text)
    named = _names(units[answer].text) - in_question
    said = content_stems(units[answer].text)
    final, last, asked_again = answer, answer, False
    for i in range(answer + 1, min(len(units), answer + 7)):
        text = units[i].text
        if REQUEST.search(text) or ((ASKS_VALUE.search(text) or IS_IT_SET.search(text))
                                    and len(content_stems(text) - asked - said) >= 2):
            break  # the next task, or a question about something else ("is the date fixed" heard without "?")
        same_kind = _kind(text) == kind if kind else _names(text) & named
        question = text.rstrip().endswith("?")
        if not question and same_kind and (SETTLES.search(text) or asked_again):
            final, last, asked_again = i, i, False  # "It's $6,500." after "Is it still $8,000 or did they cut it?"
        elif DECISION.search(text) and not VALUE.search(text) and i == last + 1:
            last = i  # "Fine, we approve that for the ad campaign."
        asked_again = asked_again or (question and bool(content_stems(text) & (asked | said)))
        named |= _names(text) - in_question
    if re.match(r"not\b", units[final].text, re.I) and final > answer:
        final -= 1  # "Fennel. Not Paylane.": the fragment before says the new one
    settled = [units[i].text for i in range(final, last + 1)]
    if not (VALUE.search(units[final].text) or (_names(units[final].text) and (final > answer or last > final))):
        return None  # no number or date, and no name that anyone agreed to
    text = f"{units[at].text.rstrip(' ?.!')}: {' '.join(settled)}"
    return NoteItem(text, units[at].start, units[last].end, units[final].speaker), last


def _task_sentence(units: list[Segment], at: int) -> Segment | None:
    """The sentence that says the task of the request in sentence `at`: the request itself, or for a
    short one ("Zoe, maybe you?") the nearest of the two before that says something to do ("Who can
    take the insurance renewal?", not a lone "Freya." or a misheard "When?"); None when none does."""
    if len(content_stems(units[at].text)) >= 3:
        return units[at]
    before = [u for u in units[max(0, at - 2) : at] if len(content_stems(u.text)) >= 2]
    return before[-1] if before else None


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


def from_transcript(segments: list[Segment], names: dict[str, str] | None = None, agreed_only: bool = False,
                    answered_only: bool = False) -> tuple[list[NoteItem], list[NoteItem]]:
    """(decisions, action items) quoted from the transcript's sentences, with their times. A decision is
    a question asked and answered (`answered`), or (unless `answered_only`) a sentence with a decision
    cue. An action item is a request someone agreed to ("Marco, could you pick up the guest list?"
    "Sure."), or (unless `agreed_only`) a sentence in which the speaker or a named person commits to a
    task; an agreement alone ("Sure, I'll do it.") is not one."""
    names = names or {}
    units = sentence_units(segments)
    decisions, answers, actions, settled_to = [], [], [], -1
    for i, unit in enumerate(units):
        reply = units[i + 1] if i + 1 < len(units) else None
        decided = answered(units, i) if i > settled_to else None
        if decided:
            answers.append(decided[0])
            settled_to = decided[1]
        elif DECISION.search(unit.text) and not unit.text.rstrip().endswith("?") and i > settled_to:
            decisions.append(_with_its_value(units, i))
        elif REQUEST.search(unit.text) and reply is not None and AGREES.search(reply.text):
            task = _task_sentence(units, i)
            if task is None:
                continue
            owner = asked_owner(units, i) or reply.speaker
            owner = names.get(owner, owner)  # a voice the user named
            actions.append(NoteItem(_task_of(task.text), task.start, reply.end, task.speaker, owner,
                                    due_in_exchange(units, i, task.text)))
        elif COMMITMENT.search(unit.text) and len(content_stems(unit.text)) >= 3 and not REQUEST.search(unit.text) \
                and not agreed_only:
            owner = _owner(unit, names)
            if owner:
                actions.append(NoteItem(unit.text, unit.start, unit.end, unit.speaker, owner,
                                        due_in_exchange(units, i, unit.text)))
    most = max(MAX_ITEMS, len(units) // SENTENCES_PER_ITEM)
    # An answered question is already as finally settled, and questions share words ("What did the quote come to"),
    # so answers skip `_latest_per_topic`; nor are they cut: a question asked and answered is no chatter.
    decisions = sorted(([] if answered_only else _latest_per_topic(decisions)[-most:]) + answers, key=lambda d: d.start)
    return decisions, _latest_per_topic(actions)[-most:]
