"""The student: a speech LLM that summarizes straight from audio (Whisper encoder -> projector -> LM).

In the style of Ultravox: the audio encoder turns 16 kHz samples into 50 frames a second; the
projector stacks `stack` frames and maps them into the LM's embedding space; the chat prompt holds
an audio placeholder whose token embeddings are replaced by those projected frames. Only the
projector and the LM's LoRA adapters train by default. Audio longer than 30 s is encoded in 30 s
windows (Whisper's span) and the frames are joined.

`generate` samples or decodes greedily and can return each token's log-probability;
`continuation_logprobs` scores a given continuation. Distillation and DPO need both.
"""

from __future__ import annotations

import hashlib
import json
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
import torch
from torch import nn

from models.llm import Decoding
from storage.audio import SAMPLE_RATE
from storage.files import sha256_file

AUDIO = "<|audio|>"
TRANSCRIBE = "Transcribe the audio."
SUMMARIZE = "Summarize the recording in three sentences."


def instruction(query: str | None) -> str:
    """The text that follows the audio in the prompt: the focus question, or a summary request as asked
    ("Summarize the discussion about ...") or the plain one."""
    query = (query or "").strip()
    if not query:
        return SUMMARIZE
    return query if query.lower().startswith("summarize") else f"Answer from the recording: {query}"


@dataclass(frozen=True)
class StudentConfig:
    encoder: str = "base"  # "base" / "tiny.en" (packaged), or a transformers Whisper dir or hub id
    llm: str = "smollm2-135m-instruct"  # the packaged LM, a local dir or a hub id
    stack: int = 8  # encoder frames per LM position: 50 frames/s -> 6.25 positions/s (as Ultravox)
    projector_hidden: int = 1024
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0  # dropout's random masks cost ~8% of a CPU training step
    lora_targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    window_s: float = 30.0
    train_encoder: bool = False


def cpu_has_bf16() -> bool:
    """Does this CPU multiply bf16 matrices natively (AVX512-BF16 or AMX)? Without, bf16 is emulated and slower."""
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


def autocast(device: torch.device | str):
    """bf16 autocast for training where the hardware does bf16 math: a GPU (about twice the matrix
    throughput) or a CPU with bf16 units (a 2-core EPYC runs an SFT step 1.4x faster,
    bench/results/2026-11-26-cpu-bf16.json). The LM was trained in bf16; the trainable weights stay fp32."""
    kind = torch.device(device).type
    if kind == "cuda" or (kind == "cpu" and cpu_has_bf16()):
        return torch.autocast(kind, dtype=torch.bfloat16)
    return nullcontext()


@cache
def feature_extractor(n_mels: int):
    """Whisper's log-mel front end; built here, since Whisper fixes all its parameters."""
    from transformers import WhisperFeatureExtractor

    return WhisperFeatureExtractor(feature_size=n_mels, sampling_rate=SAMPLE_RATE)


class AudioEncoder(nn.Module):
    """Whisper's encoder without its 30 s padding: a 5 s clip costs 5 s of compute, not 30."""

    def __init__(self, whisper_encoder: nn.Module, num_mel_bins: int):
        super().__init__()
        self.whisper = whisper_encoder
        self.num_mel_bins = num_mel_bins

    @property
    def frames_per_window(self) -> int:
        return self.whisper.embed_positions.num_embeddings

    def mel(self, audio: np.ndarray) -> torch.Tensor:
        """Log-mel features (n_mels, 2 * frames), Whisper's own computation, unpadded (in fp32 under any autocast)."""
        with torch.autocast("cpu", enabled=False):
            features = feature_extractor(self.num_mel_bins)(audio, sampling_rate=SAMPLE_RATE, padding="do_not_pad", return_tensors="pt").input_features[0]
        return features[:, : 2 * self.frames_per_window]

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """(n_mels, 2T) -> (T, d_model) for one window of at most 30 s."""
        w = self.whisper
        h = nn.functional.gelu(w.conv1(mel[None].to(w.conv1.weight.device, w.conv1.weight.dtype)))
        h = nn.functional.gelu(w.conv2(h)).permute(0, 2, 1)
        h = h + w.embed_positions.weight[: h.shape[1]]
        for layer in w.layers:
            h = layer(h, None)
        return w.layer_norm(h)[0]

    def encode(self, audio: np.ndarray, window_s: float = 30.0) -> torch.Tensor:
        """Frames of a whole recording: 30 s windows encoded one by one and joined."""
        step = int(window_s * SAMPLE_RATE)
        windows = [audio[i : i + step] for i in range(0, max(len(audio), 1), step)]
        return torch.cat([self(self.mel(w)) for w in windows if len(w) >= SAMPLE_RATE // 50])


class Projector(nn.Module):
    """Stacks `stack` consecutive frames, then an MLP into the LM's embedding size (Ultravox's design).

    The output norm starts at `scale`, the RMS of the LM's own token embeddings (as Ultravox's
    `norm_init`): audio positions several times louder than text would swamp the residual stream
    and take hundreds of steps just to shrink."""

    def __init__(self, d_audio: int, stack: int, hidden: int, d_lm: int, scale: float = 1.0):
        super().__init__()
        self.stack = stack
        self.norm = nn.LayerNorm(d_audio * stack)
        self.mlp = nn.Sequential(nn.Linear(d_audio * stack, hidden), nn.GELU(), nn.Linear(hidden, d_lm))
        self.out_norm = nn.LayerNorm(d_lm)
        nn.init.constant_(self.out_norm.weight, scale)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """(T, d_audio) -> (ceil(T / stack), d_lm). Cached training frames come in float16 (half the memory)."""
        frames = frames.to(self.norm.weight.dtype)
        pad = -frames.shape[0] % self.stack
        frames = nn.functional.pad(frames, (0, 0, 0, pad))
        stacked = frames.reshape(-1, self.stack * frames.shape[1])
        return self.out_norm(self.mlp(self.norm(stacked)))


@dataclass
class Generated:
    text: str
    token_ids: list[int]
    logprobs: list[float] = field(default_factory=list)  # raw (untempered) log-probs of the chosen tokens


class StudentError(RuntimeError):
    """A checkpoint that cannot be used as it is; the message is meant for the user."""


class Student(nn.Module):
    def __init__(self, config: StudentConfig, encoder: AudioEncoder, projector: Projector, lm: nn.Module, tokenizer,
                 bases: dict[str, str]):
        super().__init__()
        self.config, self.encoder, self.projector, self.lm, self.tokenizer = config, encoder, projector, lm, tokenizer
        self.bases = bases  # {"encoder": version, "llm": version}, recorded in checkpoints
        self.placeholder_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        for p in self.encoder.parameters():
            p.requires_grad = config.train_encoder

    @property
    def device(self) -> torch.device:
        return self.projector.mlp[0].weight.device

    @property
    def encoder_tag(self) -> str:
        return encoder_tag(self.bases)

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    # -- inputs ---------------------------------------------------------------------------------
    def audio_embeddings(self, audio: np.ndarray) -> torch.Tensor:
        """Projected frames of one recording, (positions, d_lm)."""
        with torch.set_grad_enabled(self.config.train_encoder and self.training):
            frames = self.encoder.encode(audio, self.config.window_s)
        return self.projector(frames)

    def prompt_ids(self, text: str, n_audio: int) -> tuple[list[int], int]:
        """The chat prompt with `n_audio` placeholder tokens where the audio goes, and where they start.

        The start is returned, not searched for: the placeholder is the pad token, which can also be
        the template's end-of-turn token (SmolLM2's is), so it may occur before the audio."""
        # An empty system turn: chat templates that add a default system prompt (SmolLM2's does)
        # would otherwise spend ~25 positions of every example on it.
        messages = [{"role": "system", "content": ""}, {"role": "user", "content": f"{AUDIO}\n{text}"}]
        rendered = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        before, after = rendered.split(AUDIO)
        encode = lambda s: self.tokenizer(s, add_special_tokens=False)["input_ids"]  # noqa: E731
        head = encode(before)
        return head + [self.placeholder_id] * n_audio + encode(after), len(head)

    def batch(self, audio_embeds: list[torch.Tensor], texts: list[str], continuations: list[list[int]] | None = None):
        """Left-padded inputs_embeds, attention mask, and where each continuation starts."""
        continuations = continuations or [[] for _ in texts]
        rows, audio_masks = [], []
        for emb, text, cont in zip(audio_embeds, texts, continuations, strict=True):
            ids, first = self.prompt_ids(text, emb.shape[0])
            rows.append(ids + cont)
            audio_masks.append([first <= i < first + emb.shape[0] for i in range(len(ids) + len(cont))])
        width = max(map(len, rows))
        pad = [width - len(r) for r in rows]
        ids = torch.tensor([[self.placeholder_id] * p + r for p, r in zip(pad, rows)], device=self.device)
        is_audio = torch.tensor([[False] * p + m for p, m in zip(pad, audio_masks)], device=self.device)
        mask = torch.tensor([[0] * p + [1] * len(r) for p, r in zip(pad, rows)], device=self.device)
        embeds = self.lm.get_input_embeddings()(ids)
        embeds = embeds.masked_scatter(is_audio[..., None], torch.cat(audio_embeds).to(embeds.dtype))
        return embeds, mask, ids

    # -- scoring and generation -------------------------------------------------------------------
    def continuation_logits(
        self, audio_embeds: list[torch.Tensor], texts: list[str], continuations: list[list[int]]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The logits that predict each continuation token, (B, L, V), its token ids (B, L) and a (B, L) mask.

        Distillation needs the whole distribution at these positions, not only the chosen tokens'
        log-probs; prompt, audio and padding positions are never returned."""
        embeds, mask, ids = self.batch(audio_embeds, texts, continuations)
        return continuation_outputs(self.lm, embeds, mask, ids, continuations)

    def continuation_logprobs(
        self, audio_embeds: list[torch.Tensor], texts: list[str], continuations: list[list[int]]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-token log-probs of each continuation given audio + prompt: (B, L) values and a (B, L) mask."""
        return token_logprobs(*self.continuation_logits(audio_embeds, texts, continuations))

    def generate(self, audio: list[np.ndarray], texts: list[str], decoding: Decoding = Decoding()) -> list[Generated]:
        with torch.no_grad():
            embeddings = [self.audio_embeddings(a) for a in audio]
        return self.generate_from_embeddings(embeddings, texts, decoding)

    @torch.no_grad()
    def generate_from_embeddings(
        self, audio_embeds: list[torch.Tensor], texts: list[str], decoding: Decoding = Decoding(), candidates: int = 1
    ) -> list[Generated]:
        """`candidates` results per input, grouped by input: the best beams, best first, or independent samples."""
        embeds, mask, _ = self.batch(audio_embeds, texts)
        return self.generate_from_embeddings_raw(embeds, mask, decoding, candidates)

    @torch.no_grad()
    def generate_from_embeddings_raw(self, embeds: torch.Tensor, mask: torch.Tensor, decoding: Decoding,
                                     candidates: int = 1) -> list[Generated]:
        if decoding.seed is not None:
            torch.manual_seed(decoding.seed)
        sampling = dict(temperature=decoding.temperature, top_p=decoding.top_p) if decoding.do_sample else {}
        out = self.lm.generate(
            inputs_embeds=embeds, attention_mask=mask, max_new_tokens=decoding.max_new_tokens,
            do_sample=decoding.do_sample, repetition_penalty=decoding.repetition_penalty,
            no_repeat_ngram_size=decoding.no_repeat_ngram_size, num_beams=decoding.num_beams,
            pad_token_id=self.placeholder_id, eos_token_id=self.tokenizer.eos_token_id,
            num_return_sequences=candidates, return_dict_in_generate=True, output_logits=True, **sampling,
        )
        # Each chosen token's log-probability under the model (before any repetition rule), followed
        # along its beam's history when beam search reorders the beams.
        logp = self.lm.compute_transition_scores(
            out.sequences, [step.float() for step in out.logits], out.get("beam_indices"), normalize_logits=True
        )
        results = []
        for row, seq in enumerate(out.sequences[:, -logp.shape[1] :].tolist()):
            n = next((i + 1 for i, t in enumerate(seq) if t == self.tokenizer.eos_token_id), len(seq))
            tokens = seq[:n]
            values = [float(v) for v in logp[row, :n]]
            text = self.tokenizer.decode(tokens, skip_special_tokens=True).strip()
            results.append(Generated(text, tokens, values))
        return results

    @torch.no_grad()
    def chat(self, prompt: str, decoding: Decoding = Decoding()) -> str:
        """The LM alone, adapters off, on a text prompt: the plain instruct model, for merging the
        summaries of a long recording's pieces (the adapters were trained with audio in the prompt)."""
        messages = [{"role": "system", "content": ""}, {"role": "user", "content": prompt}]
        ids = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                                 return_dict=True)["input_ids"].to(self.device)
        embeds = self.lm.get_input_embeddings()(ids)
        with self.lm.disable_adapter():
            return self.generate_from_embeddings_raw(embeds, torch.ones_like(ids), decoding)[0].text

    # -- checkpoints ------------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Projector + LoRA adapter + config + manifest; the base weights stay in the model cache."""
        from safetensors.torch import save_file

        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        save_file({k: v.detach().contiguous() for k, v in self.projector.state_dict().items()}, out / "projector.safetensors")
        self.lm.save_pretrained(out / "adapter")
        (out / "config.json").write_text(json.dumps(asdict(self.config), indent=2))
        (out / "manifest.json").write_text(json.dumps({"bases": self.bases}, indent=2))
        return out

    def load_weights(self, checkpoint: str | Path) -> Student:
        """Loads a checkpoint's projector and adapter, if it was trained on these same base weights."""
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        checkpoint = Path(checkpoint)
        saved = json.loads((checkpoint / "manifest.json").read_text())["bases"]
        if saved != self.bases:
            raise StudentError(f"{checkpoint} was trained on other base weights: {saved}, not {self.bases}")
        self.projector.load_state_dict(load_file(checkpoint / "projector.safetensors"))
        set_peft_model_state_dict(self.lm, load_file(checkpoint / "adapter" / "adapter_model.safetensors"))
        return self


def continuation_outputs(lm: nn.Module, embeds: torch.Tensor, mask: torch.Tensor, ids: torch.Tensor,
                         continuations: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Logits at the positions that predict left-padded, right-aligned continuations; shared with the teacher."""
    positions = (mask.cumsum(-1) - 1).clamp(min=0)  # left padding must not shift positions
    length = max(map(len, continuations))
    # The continuations are right-aligned (left padding), so only the last positions need logits.
    logits = lm(inputs_embeds=embeds, attention_mask=mask, position_ids=positions, logits_to_keep=length + 1).logits
    cmask = torch.tensor([[0] * (length - len(c)) + [1] * len(c) for c in continuations], device=embeds.device)
    return logits[:, :-1], ids[:, -length:], cmask


def token_logprobs(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each target token's log-probability under `logits` (zero where masked), and the mask."""
    values = torch.log_softmax(logits.float(), dim=-1).gather(-1, targets[..., None])[..., 0]
    return values * mask, mask


def with_lora(lm: nn.Module, config: StudentConfig) -> nn.Module:
    """The LM wrapped with LoRA adapters; its own weights are frozen by peft."""
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=list(config.lora_targets), task_type="CAUSAL_LM")
    return get_peft_model(lm, lora)


def load_audio_encoder(path: str) -> AudioEncoder:
    """A converted packaged encoder (config.json + encoder.safetensors) or any transformers Whisper."""
    from transformers import WhisperConfig, WhisperModel
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    converted = Path(path) / "encoder.safetensors"
    if converted.exists():
        from safetensors.torch import load_file

        config = WhisperConfig.from_pretrained(path)
        encoder = WhisperEncoder(config)
        encoder.load_state_dict(load_file(converted))
    else:
        model = WhisperModel.from_pretrained(path)
        config, encoder = model.config, model.encoder
    return AudioEncoder(encoder.float().eval(), config.num_mel_bins)


def encoder_tag(bases: dict) -> str:
    """What names an encoder's cached frames: its version and weights (other weights, other frames)."""
    return bases["encoder"] + bases["encoder_sha256"]


def weights_digest(path: str) -> str:
    """sha256 of a model dir's weight files (a hub id has none here: its name stands in)."""
    files = sorted(Path(path).glob("*.safetensors")) if Path(path).is_dir() else []
    return hashlib.sha256("".join(sha256_file(f) for f in files).encode()).hexdigest() if files else path


def build_student(config: StudentConfig, models_dir: Path, device: str = "cpu") -> Student:
    """A fresh student on the cached base models: new projector, new LoRA adapters."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from models.sources import resolve_audio_encoder, resolve_llm

    encoder_source = resolve_audio_encoder(config.encoder, models_dir)
    llm_source = resolve_llm(config.llm, models_dir)
    encoder = load_audio_encoder(encoder_source.path)
    lm = AutoModelForCausalLM.from_pretrained(llm_source.path, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(llm_source.path)
    scale = lm.get_input_embeddings().weight.detach().pow(2).mean().sqrt().item()  # the text tokens' RMS
    projector = Projector(encoder.whisper.config.d_model, config.stack, config.projector_hidden,
                          lm.config.hidden_size, scale)
    bases = {"encoder": encoder_source.version, "encoder_sha256": weights_digest(encoder_source.path),
             "llm": llm_source.version, "llm_sha256": weights_digest(llm_source.path)}
    return Student(config, encoder, projector, with_lora(lm, config), tokenizer, bases).to(device)


def load_student(checkpoint: str | Path, models_dir: Path, device: str = "cpu") -> Student:
    """A saved student, rebuilt on the cached base models; refuses other base weights than it was trained on."""
    checkpoint = Path(checkpoint)
    if not (checkpoint / "manifest.json").exists():
        raise StudentError(f"{checkpoint} is not a student checkpoint (no manifest.json)")
    raw = json.loads((checkpoint / "config.json").read_text())
    config = StudentConfig(**(raw | {"lora_targets": tuple(raw["lora_targets"])}))
    return build_student(config, models_dir, device).load_weights(checkpoint).eval()
