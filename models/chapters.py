"""Chapters of a long recording: timestamped sections, each with a summary grounded in its own part.

A summary of summaries drifts (a 30-minute meeting once came back as a made-up welcome letter), so
a recording longer than `MIN_TOTAL_S` is cut into sections of about `TARGET_S` at the longest pause
near each boundary; each section is summarized and checked against its own transcript, and the
overall summary, made from the sections' summaries, is checked against the whole transcript,
content words included: a sentence whose content words the recording mostly lacks is dropped.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from models.asr import Segment

MIN_TOTAL_S = 360.0  # shorter recordings are one section
TARGET_S = 300.0
SEARCH_S = 60.0  # how far from the nominal boundary a cut may move to find a pause
MIN_SUPPORT = 0.5  # share of a summary sentence's content words the transcript must have


@dataclass
class Chapter:
    start: float
    end: float
    summary: str
    dropped: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def spans(segments: list[Segment], target_s: float = TARGET_S, min_total_s: float = MIN_TOTAL_S
          ) -> list[list[Segment]]:
    """The segments grouped into sections of about `target_s`, each cut at the longest pause within
    `SEARCH_S` of its mark; a tail shorter than a third of a section stays with the one before."""
    if not segments or segments[-1].end - segments[0].start < min_total_s:
        return [segments]
    # (time, pause, index of the segment after the gap) for every gap between segments
    gaps = [(segments[i].end, segments[i + 1].start - segments[i].end, i + 1) for i in range(len(segments) - 1)]
    cuts: list[int] = []
    mark = segments[0].start + target_s
    while mark < segments[-1].end - target_s / 3:
        later = [g for g in gaps if not cuts or g[2] > cuts[-1]]
        near = [g for g in later if abs(g[0] - mark) <= SEARCH_S]
        if not near:
            near = [min(later, key=lambda g: abs(g[0] - mark))] if later else []
        if not near:
            break
        time, _, index = max(near, key=lambda g: g[1])
        cuts.append(index)
        mark = time + target_s
    return [segments[a:b] for a, b in zip([0, *cuts], [*cuts, len(segments)], strict=True)]
