"""Trained versions that ship in the repository, so a fresh install serves them with no training step.

A shipped version is a folder `models/shipped/<version>/` holding only its trained parts in bf16
(the student's projector and LoRA adapter, or the teacher's adapter) and `release.json`: its name,
kind, stage, parent, data hash, the sha256 of each of its files, the hashes of the base weights it
was trained on, its metrics and the commit that trained it. `speechsum db upgrade` (which
`make serve` runs) registers each shipped version not yet registered and serves it when nothing of
its kind is served, as a promotion with the reason "shipped"; an aligned student (stage "align") only
registers, as the start of a fresh install's training, which then skips alignment. If the packaged base weights are not
the ones it was trained on, it is refused with one line, and the raw cascade serves.
`speechsum models release VERSION ...` makes a new release from registered versions.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from functools import partial
from pathlib import Path

from storage import registry
from storage.db import ensure_schema, session_scope
from storage.files import file_digests
from storage.settings import Settings

SHIPPED = Path(__file__).resolve().parent / "shipped"
MANIFEST = "release.json"


def base_hashes(settings: Settings, kind: str = "student") -> dict[str, str]:
    """The installed base weights a version of `kind` adapts, as it records them (versions and the
    sha256 of their weight files): a student's encoder and LM, a teacher's LM (the cascade's)."""
    from models.sources import resolve_audio_encoder, resolve_llm
    from models.student import StudentConfig, weights_digest

    if kind == "teacher":
        llm = resolve_llm(settings.llm_model, settings.models_dir)
        return {"llm": llm.version, "llm_sha256": weights_digest(llm.path)}
    config = StudentConfig()
    encoder = resolve_audio_encoder(config.encoder, settings.models_dir)
    llm = resolve_llm(config.llm, settings.models_dir)
    return {"encoder": encoder.version, "encoder_sha256": weights_digest(encoder.path),
            "llm": llm.version, "llm_sha256": weights_digest(llm.path)}


def _mismatch(needed: dict, bases: dict) -> str:
    """What differs between the bases a version needs and the installed ones ("" when none)."""
    differ = sorted(k for k, v in needed.items() if bases.get(k) != v)
    return ", ".join(f"{k} {needed[k][:16]} (installed: {str(bases.get(k))[:16]})" for k in differ)


def install(settings: Settings, root: Path = SHIPPED, bases: Callable[[str], dict] | None = None) -> list[str]:
    """Registers and, where nothing of its kind is served, serves each shipped version; one line each.
    An aligned student only transcribes, so it registers as a parent for training and is never served."""
    order = {stage: i for i, stage in enumerate(("teacher", "align", "sft", "kd", "dpo"))}  # parents first
    manifests = sorted(root.glob(f"*/{MANIFEST}") if root.is_dir() else [],
                       key=lambda p: (order.get(p.parent.name.split("-")[0], 9), p.parent.name))
    if not manifests:
        return []
    hashes = bases or partial(base_hashes, settings)
    installed: dict[str, dict] = {}
    ensure_schema(settings.db_url)
    said = []
    for path in manifests:
        release, folder = json.loads(path.read_text()), path.parent
        name, kind = release["version"], release["kind"]
        if file_digests(folder, MANIFEST) != release["files"]:
            said.append(f"shipped {kind} {name} refused: its files do not match {MANIFEST}")
            continue
        if kind not in installed:
            installed[kind] = hashes(kind)
        differ = _mismatch(release["bases"], installed[kind])
        if differ:
            said.append(f"shipped {kind} {name} refused: trained on other base weights ({differ}); "
                        f"the raw cascade serves")
            continue
        with session_scope(settings.db_url) as session:
            new = registry.find(session, name) is None
            if new:
                parent = registry.find(session, release["parent"]) if release.get("parent") else None
                registry.register(session, name=name, kind=kind, stage=release["stage"], checkpoint=folder,
                                  parent=parent, bases=release["bases"], config=release.get("config", {}),
                                  data_hash=release.get("data_hash", ""),
                                  metrics=release.get("metrics", {}) | {"shipped": release.get("commit", "")})
            version = registry.get(session, name)
            if release["stage"] == "align":
                said += [f"registered shipped aligned {kind} {name}: training starts from it"] if new else []
            elif registry.served(session, kind) is None:
                registry.promote(session, version, reason="shipped", actor="db upgrade")
                said.append(f"serving shipped {kind} {name}")
    return said


def _to_bf16(folder: Path) -> None:
    """Every safetensors file of the folder rewritten in bf16: half the size, loaded back into fp32 weights."""
    import torch
    from safetensors.torch import load_file, save_file

    for path in folder.rglob("*.safetensors"):
        tensors = load_file(path)
        save_file({k: v.to(torch.bfloat16).contiguous() for k, v in tensors.items()}, path)


def code_commit() -> str:
    """The commit of this code ("-dirty" when the work tree has changes), or "" outside git: a run
    records it when it finishes, and a release names it as the commit that trained the version."""
    try:
        git = lambda *args: subprocess.run(["git", *args], capture_output=True, text=True, check=True,  # noqa: E731
                                           cwd=SHIPPED.parent).stdout.strip()
        return git("rev-parse", "HEAD") + ("-dirty" if git("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.CalledProcessError):
        return ""


def release(settings: Settings, names: list[str], root: Path = SHIPPED,
            hashes: Callable[[str], dict] | None = None) -> list[Path]:
    """Copies registered versions' checkpoints into `root` as shipped versions (bf16, with release.json).
    A base's sha256 the version did not record (a teacher's LM) is added from the installed base of
    the same version, so a fresh install can check it."""
    hashes = hashes or partial(base_hashes, settings)
    ensure_schema(settings.db_url)
    out = []
    for name in names:
        with session_scope(settings.db_url) as session:
            version = registry.get(session, name)
            parent = session.get(type(version), version.parent_id) if version.parent_id else None
            bases = dict(version.bases)
            unhashed = [k for k in bases if not k.endswith("_sha256") and f"{k}_sha256" not in bases]
            if unhashed:  # hashing the installed bases reads gigabytes: only when a hash is missing
                installed = hashes(version.kind)
                bases |= {f"{k}_sha256": installed[f"{k}_sha256"] for k in unhashed
                          if installed.get(k) == bases[k] and f"{k}_sha256" in installed}
            release = {"version": version.name, "kind": version.kind, "stage": version.stage,
                       "parent": parent.name if parent else None, "data_hash": version.data_hash,
                       "bases": bases, "config": version.config, "metrics": version.metrics,
                       "commit": version.metrics.get("commit") or code_commit()}
            checkpoint = Path(version.checkpoint)
        target = root / name
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(checkpoint, target, ignore=shutil.ignore_patterns("*.json.partial", "align.json", "README.md"))
        _to_bf16(target)
        (target / MANIFEST).write_text(json.dumps(release | {"files": file_digests(target, MANIFEST)}, indent=1, default=str))
        out.append(target)
    return out
