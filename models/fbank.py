"""Kaldi log-mel filterbank features in torch: the diarizer's features where its native extractor cannot run.

senko computes its speaker embeddings' input (80 log-mel bins, 25 ms frames every 10 ms, Kaldi's
options) with a shared library built for CPUs with AVX-512. On a CPU without it (an AVX2-only AMD
EPYC here) the library stops the whole process with "Illegal instruction", so a server died
silently on its first upload. senko already takes its features from a callable on its GPU path
(kaldifeat's `Fbank`); this is that callable in plain torch, with the same options, following
Kaldi's `ComputeFbankFeats` as torchaudio's `compliance.kaldi.fbank` does.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

SAMPLE_RATE = 16000
FRAME = 400  # 25 ms
SHIFT = 160  # 10 ms
FFT = 512  # the frame rounded up to a power of two
BINS = 80
LOW_HZ = 20.0
PREEMPHASIS = 0.97
NATIVE_FLAGS = {"avx512f", "avx512bw", "avx512dq", "avx512vl"}  # what senko's library was built for


def native_extractor_runs(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU has the instruction sets senko's native extractor uses (its code has zmm
    registers, mask moves of bytes and words, 256-bit lane inserts); unknown counts as no."""
    try:
        flags = next(line for line in cpuinfo.read_text().splitlines() if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return False
    return NATIVE_FLAGS <= set(flags)


def _mel(hz: torch.Tensor | float) -> torch.Tensor | float:
    return 1127.0 * (torch.log1p(hz / 700.0) if isinstance(hz, torch.Tensor) else math.log1p(hz / 700.0))


def mel_banks() -> torch.Tensor:
    """(BINS, FFT // 2 + 1) triangular filters, equally spaced on the mel scale from LOW_HZ to Nyquist."""
    low, high = _mel(LOW_HZ), _mel(SAMPLE_RATE / 2)
    delta = (high - low) / (BINS + 1)
    left = low + delta * torch.arange(BINS, dtype=torch.float64).unsqueeze(1)
    center, right = left + delta, left + 2 * delta
    mel = _mel(SAMPLE_RATE / FFT * torch.arange(FFT // 2, dtype=torch.float64)).unsqueeze(0)
    banks = torch.clamp(torch.minimum((mel - left) / (center - left), (right - mel) / (right - center)), min=0.0)
    return torch.nn.functional.pad(banks, (0, 1)).float()  # the Nyquist bin gets no weight, as in Kaldi


class KaldiFbank:
    """Called as senko calls kaldifeat's `Fbank`: a list of 1-D waveforms in, a list of (frames, BINS) out."""

    def __init__(self):
        self.banks = mel_banks()
        self.window = torch.hann_window(FRAME, periodic=False, dtype=torch.float64).pow(0.85).float()  # "povey"

    def __call__(self, waves: list[torch.Tensor]) -> list[torch.Tensor]:
        return [self.features(w) for w in waves]

    def features(self, wave: torch.Tensor) -> torch.Tensor:
        wave = wave.float().flatten()
        if wave.numel() < FRAME:
            return torch.empty(0, BINS)
        frames = wave.unfold(0, FRAME, SHIFT)  # snip_edges: only whole frames
        frames = frames - frames.mean(dim=1, keepdim=True)  # remove_dc_offset
        previous = torch.cat([frames[:, :1], frames[:, :-1]], dim=1)  # the first sample is its own predecessor
        frames = (frames - PREEMPHASIS * previous) * self.window
        power = torch.fft.rfft(frames, n=FFT).abs().pow(2)
        energies = power @ self.banks.T
        return torch.clamp(energies, min=torch.finfo(torch.float32).eps).log()
