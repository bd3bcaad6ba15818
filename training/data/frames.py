"""The frozen Whisper encoder's frames of spoken files, computed once per encoder and cached (float16)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from tqdm import tqdm

from training.data.items import EvalItem
from training.data.speech import spoken_wavs


def frames_dir(root: Path, tag: str) -> Path:
    """Where the frames of the files spoken under `root` are cached for the encoder named by `tag`."""
    return root / "frames" / hashlib.sha256(tag.encode()).hexdigest()[:12]


def encoder_frames(encoder, wavs: list[Path], root: Path, tag: str, device: str | torch.device = "cpu"
                   ) -> list[torch.Tensor]:
    """The frozen encoder's frames of each file, computed once per encoder `tag`. They stay in float16,
    as on disk: a default SFT's 582 items, generated meetings of minutes among them, take 2.2 GB so
    against 4.4 GB in float32. The projector casts each to its own dtype when it is used."""
    cache_dir = frames_dir(root, tag)
    cache_dir.mkdir(parents=True, exist_ok=True)
    frames = []
    for wav in tqdm(wavs, desc="encoding audio (cached)", unit="utt"):
        path = cache_dir / f"{wav.stem}.pt"
        if not path.exists():
            from storage.audio import read_samples  # PyAV, only when there is audio to read

            with torch.no_grad():
                torch.save(encoder.encode(read_samples(wav)).half(), path)
        frames.append(torch.load(path, map_location=device))
    return frames


def spoken_frames(items: list[EvalItem], encoder, root: Path, tag: str, seed: int = 0,
                  device: str | torch.device = "cpu") -> list[torch.Tensor]:
    """Each item spoken (see `spoken_wavs`) and its encoder frames."""
    return encoder_frames(encoder, spoken_wavs(items, root, seed), root, tag, device)


