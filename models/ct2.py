"""Reads a CTranslate2 `model.bin` and rebuilds the Whisper encoder from it in PyTorch.

The packaged Whisper weights exist only in CTranslate2's format; the student needs the same
pretrained encoder as a PyTorch module it can run (and, if asked, fine-tune). The file layout
(little-endian): u32 version, str name, u32 revision, u32 count, then per variable: str name,
u8 rank, u32 dims, u8 dtype, u32 byte count, bytes; a str is a u16 length (with a NUL) + bytes.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

import numpy as np
import torch

_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


def read_variables(path: str | Path) -> dict[str, np.ndarray]:
    data = Path(path).read_bytes()
    pos = 0

    def take(fmt: str):
        nonlocal pos
        values = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize("<" + fmt)
        return values

    def string() -> str:
        nonlocal pos
        (length,) = take("H")
        text = data[pos : pos + length - 1].decode()
        pos += length
        return text

    take("I")  # binary version
    string()  # model name
    take("I")  # revision
    (count,) = take("I")
    variables = {}
    for _ in range(count):
        name = string()
        (rank,) = take("B")
        shape = take("I" * rank)
        dtype, nbytes = take("BI")
        variables[name] = np.frombuffer(data, _DTYPES[dtype], nbytes // np.dtype(_DTYPES[dtype]).itemsize, pos).reshape(shape)
        pos += nbytes
    return variables


def whisper_encoder_state(variables: dict[str, np.ndarray]) -> tuple[dict[str, torch.Tensor], dict]:
    """The encoder's weights renamed to transformers' WhisperEncoder, and the config values they imply."""
    def t(name: str) -> torch.Tensor:
        return torch.from_numpy(np.array(variables[f"encoder/{name}"], dtype=np.float32))

    layers = len({k.split("/")[1] for k in variables if re.match(r"encoder/layer_\d+/", k)})
    d_model = variables["encoder/conv1/weight"].shape[0]
    state = {
        "conv1.weight": t("conv1/weight"), "conv1.bias": t("conv1/bias"),
        "conv2.weight": t("conv2/weight"), "conv2.bias": t("conv2/bias"),
        "embed_positions.weight": t("position_encodings/encodings"),
        "layer_norm.weight": t("layer_norm/gamma"), "layer_norm.bias": t("layer_norm/beta"),
    }
    for i in range(layers):
        src, dst = f"layer_{i}", f"layers.{i}"
        q, k, v = t(f"{src}/self_attention/linear_0/weight").chunk(3)
        qb, _, vb = t(f"{src}/self_attention/linear_0/bias").chunk(3)
        state |= {
            f"{dst}.self_attn.q_proj.weight": q, f"{dst}.self_attn.q_proj.bias": qb,
            f"{dst}.self_attn.k_proj.weight": k,
            f"{dst}.self_attn.v_proj.weight": v, f"{dst}.self_attn.v_proj.bias": vb,
            f"{dst}.self_attn.out_proj.weight": t(f"{src}/self_attention/linear_1/weight"),
            f"{dst}.self_attn.out_proj.bias": t(f"{src}/self_attention/linear_1/bias"),
            f"{dst}.self_attn_layer_norm.weight": t(f"{src}/self_attention/layer_norm/gamma"),
            f"{dst}.self_attn_layer_norm.bias": t(f"{src}/self_attention/layer_norm/beta"),
            f"{dst}.fc1.weight": t(f"{src}/ffn/linear_0/weight"), f"{dst}.fc1.bias": t(f"{src}/ffn/linear_0/bias"),
            f"{dst}.fc2.weight": t(f"{src}/ffn/linear_1/weight"), f"{dst}.fc2.bias": t(f"{src}/ffn/linear_1/bias"),
            f"{dst}.final_layer_norm.weight": t(f"{src}/ffn/layer_norm/gamma"),
            f"{dst}.final_layer_norm.bias": t(f"{src}/ffn/layer_norm/beta"),
        }
    config = {"d_model": d_model, "encoder_layers": layers, "num_mel_bins": variables["encoder/conv1/weight"].shape[1],
              "encoder_ffn_dim": variables["encoder/layer_0/ffn/linear_0/weight"].shape[0],
              "max_source_positions": variables["encoder/position_encodings/encodings"].shape[0],
              "encoder_attention_heads": int(variables["encoder/num_heads"])}
    return state, config
