"""`make bench-speakers`: how well speakers are told apart, on meetings whose turns are known.

Meetings: held-out QMSum items' first turns spoken with flite voices (one per speaker; espeak-ng
voices are too alike to tell apart), and one of real human speech (two readers of Debian's
pocketsphinx-testdata, taking turns). Reported per meeting: diarization error rate (0.25 s collar),
speakers found vs present, seconds per audio minute. Results: bench/results/<date>-speakers.{json,md}.
"""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path

import numpy as np
import soundfile
from tqdm import tqdm

from bench.asr import POCKETSPHINX_DATA
from bench.report import RESULTS, write_report
from models.diarize import Turn, diarization_error
from storage.audio import SAMPLE_RATE
from storage.settings import Settings
from training.data.items import load_items, split
from training.data.speech import TURN_GAP_S

FLITE_VOICES = ("kal16", "slt", "awb", "rms")


def _write(path: Path, pieces: list[tuple[str, np.ndarray]]) -> tuple[Path, list[Turn]]:
    """Joins (speaker, samples) turns with a short pause; returns the WAV and the true turns."""
    gap = np.zeros(int(TURN_GAP_S * SAMPLE_RATE), dtype=np.float32)
    audio, turns, at = [], [], 0.0
    for speaker, samples in pieces:
        turns.append(Turn(speaker, round(at, 2), round(at + len(samples) / SAMPLE_RATE, 2)))
        audio += [samples, gap]
        at += (len(samples) + len(gap)) / SAMPLE_RATE
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, np.concatenate(audio), SAMPLE_RATE, subtype="PCM_16")
    return path, turns


def spoken_meeting(turns: list[tuple[str, str]], out: Path) -> tuple[Path, list[Turn]]:
    """(speaker, text) turns spoken with one flite voice per speaker."""
    from storage.audio import read_samples
    from training.data.tts import synthesize

    voice_of: dict[str, str] = {}
    pieces = []
    for speaker, text in turns:
        voice = voice_of.setdefault(speaker, FLITE_VOICES[len(voice_of) % len(FLITE_VOICES)])
        pieces.append((speaker, read_samples(synthesize(text, out.with_suffix(".turn.wav"), "flite", voice=voice))))
    out.with_suffix(".turn.wav").unlink(missing_ok=True)
    return _write(out, pieces)


def real_meeting(out: Path, turns: int = 8, root: Path = POCKETSPHINX_DATA) -> tuple[Path, list[Turn]]:
    """Two real readers taking turns: LibriVox clips and the "cards" speaker, alternating."""
    from storage.audio import read_samples

    reader = sorted((root / "librivox").glob("*.wav"))
    cards = sorted((root / "cards").glob("*.wav"))
    if not reader or not cards:
        raise FileNotFoundError(f"{root} lacks librivox/cards clips (apt-get install pocketsphinx-testdata)")
    pieces = [(("reader", read_samples(reader[i // 2 % len(reader)])) if i % 2 == 0 else
               ("cards", read_samples(cards[i // 2 % len(cards)]))) for i in range(turns)]
    return _write(out, pieces)


def bench_speakers(settings: Settings, meetings: int = 8, max_turns: int = 16, out_dir: Path | None = None) -> dict:
    from models.serving import load_diarizer
    from storage.audio import read_samples

    items = [i for i in split(load_items(settings.shared_data / "qmsum_dev.jsonl"))["held_out"]
             if 2 <= len({s for s, _ in i.turns[:max_turns]}) <= len(FLITE_VOICES)][:meetings]
    cache = settings.data_dir / "speaker-audio"
    cases = [(item.id, *spoken_meeting(item.turns[:max_turns], cache / f"{item.id}.wav"))
             for item in tqdm(items, desc="speaking meetings (flite)", unit="meeting")]
    cases.append(("real speech: two readers", *real_meeting(cache / "real-two-readers.wav")))
    diarizer = load_diarizer(settings)
    rows = []
    for name, wav, truth in tqdm(cases, desc="diarizing", unit="meeting"):
        samples = read_samples(wav)
        started = time.perf_counter()
        found = diarizer.turns(samples)
        seconds = time.perf_counter() - started
        minutes = len(samples) / SAMPLE_RATE / 60
        rows.append({"meeting": name, "minutes": round(minutes, 2), "speakers": len({t.speaker for t in truth}),
                     "found": len({t.speaker for t in found}), "der": round(diarization_error(truth, found), 4),
                     "s_per_audio_min": round(seconds / minutes, 2)})
    synthetic = [r for r in rows if not r["meeting"].startswith("real")]
    report = {"date": date.today().isoformat(), "rows": rows,
              "mean_der_flite": round(float(np.mean([r["der"] for r in synthetic])), 4) if synthetic else None,
              "speaker_count_right": sum(r["speakers"] == r["found"] for r in rows) / len(rows)}
    lines = [f"# Speakers, {report['date']}", "", "| meeting | minutes | speakers | found | DER | s per audio min |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r['meeting']} | {r['minutes']} | {r['speakers']} | {r['found']} | {100 * r['der']:.1f}% | "
              f"{r['s_per_audio_min']} |" for r in rows]
    write_report((out_dir or RESULTS) / f"{report['date']}-speakers", report, "\n".join(lines) + "\n")
    return report
