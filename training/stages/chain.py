"""The stages in order: alignment (if none yet), teacher fine-tuning, SFT, KD, DPO, each from the last.

Every stage is a plain function with a config (training/{align,teacher,sft,kd,dpo}.py); the CLI
and the workers call these. Each stage registers a candidate and changes nothing that is served.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from pathlib import Path

from models.progress import scaled
from storage.settings import Settings
from training.config import configure
from training.refresh import RefreshConfig

STAGES = ("teacher", "sft", "kd", "dpo")


def config_classes() -> dict[str, type]:
    """Each stage's `*Config`, alignment's included (imported here, so a plain CLI call stays light)."""
    from training.stages.align import AlignConfig
    from training.stages.dpo import DPOConfig
    from training.stages.kd import KDConfig
    from training.stages.sft import SFTConfig
    from training.stages.teacher import TeacherConfig

    return {"align": AlignConfig, "teacher": TeacherConfig, "sft": SFTConfig, "kd": KDConfig, "dpo": DPOConfig}


def stage_config(stage: str, changes: dict):
    """The stage's config with the given changes (None keeps a default; an unknown key is refused), so
    the CLI, the workers and the admin tab start a stage the same way."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; choose one of {', '.join(STAGES)}")
    return configure(config_classes()[stage](), changes)


def build_data(settings: Settings, progress=None, max_words: int = 450, seed: int = 0) -> dict:
    """Speaks the training items and caches the served (else newest) student's encoder frames of them,
    and speaks the gate's held-out items: the slow part of a first training run, done ahead."""
    from models.student import load_student
    from storage import registry
    from storage.db import ensure_schema, session_scope
    from training.refresh import RefreshConfig, gate_items
    from training.stages.sft import SFTConfig, student_items

    ensure_schema(settings.db_url)
    with session_scope(settings.db_url) as session:
        version = registry.served(session, "student") or registry.latest(session, "student")
        if version is None:
            raise registry.RegistryError("there is no student yet: run `speechsum train align` first")
        checkpoint = version.checkpoint
    if progress:
        progress(0.05, "speaking and encoding the training items")
    student = load_student(checkpoint, settings.models_dir, settings.device)
    items, _ = student_items(settings, student, max_words, None, seed, SFTConfig().meetings)
    if progress:
        progress(0.8, "speaking the held-out items of the gate")
    held_out, _ = gate_items(settings, RefreshConfig.from_settings(settings))
    return {"training_items": len(items), "held_out_items": len(held_out),
            "message": f"{len(items)} training items and {len(held_out)} held-out items ready"}


def run_stage(settings: Settings, stage: str, cfg, progress=None) -> str:
    from training.stages.dpo import dpo
    from training.stages.kd import kd
    from training.stages.sft import sft
    from training.stages.teacher import finetune_teacher

    return {"teacher": finetune_teacher, "sft": sft, "kd": kd, "dpo": dpo}[stage](settings, cfg, progress)


# Each stage's share of a whole chain's time on a 2-core CPU (minutes of the benched runs), for its progress.
MINUTES = {"align": 48, "teacher": 12, "sft": 30, "kd": 17, "dpo": 25, "gate": 5}


class ChainState:
    """Which stages a chain has finished, in <data dir>/runs/chain-<digest of its configs>.json, so the
    same chain started again (after a crash, a `kill -9`, a cancel) skips them; the stage under way
    resumes from its own run's last save. A chain that ends removes the file: the next one starts afresh."""

    def __init__(self, data_dir: Path, configs: dict, align_items: int):
        from training.stages.runs import config_dict

        key = json.dumps([align_items, {k: config_dict(c) for k, c in sorted(configs.items())}], sort_keys=True)
        self.path = data_dir / "runs" / f"chain-{hashlib.sha256(key.encode()).hexdigest()[:12]}.json"
        self.done: dict = json.loads(self.path.read_text()) if self.path.exists() else {}

    def finished(self, settings: Settings, stage: str) -> str | None:
        """The version this chain made at `stage`, if it is still registered and usable."""
        from storage import registry
        from storage.db import session_scope

        name = self.done.get(stage)
        with session_scope(settings.db_url) as session:
            version = registry.find(session, name) if name else None
            return name if version is not None and version.status != "failed" else None

    def record(self, stage: str, name: str, minutes: float) -> None:
        self.done |= {stage: name, f"{stage}_minutes": minutes}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".partial")
        partial.write_text(json.dumps(self.done, indent=1))
        os.replace(partial, self.path)

    def close(self) -> None:
        self.path.unlink(missing_ok=True)


def train_all(settings: Settings, configs: dict, align_items: int = 2000, progress=None,
              gate: RefreshConfig | None = None) -> dict:
    """Runs every stage after the last (alignment only if no aligned student exists); returns
    {stage: version}, with each stage's minutes under "<stage>_minutes". Started again with the same
    configs, it goes on where it stopped (ChainState). With `gate`, the last version then goes through
    the learning loop's gate and serves if it passes: the one action that trains a fresh install."""
    from storage import registry
    from storage.db import ensure_schema, session_scope
    from training.stages.dpo import NoPairs

    ensure_schema(settings.db_url)
    state = ChainState(settings.data_dir, configs, align_items)
    with session_scope(settings.db_url) as session:
        aligned = registry.latest(session, "student", "align")
        aligned = state.finished(settings, "align") or (aligned.name if aligned else None)
    todo = [s for s in ("align", *STAGES) if not (s == "align" and aligned)] + (["gate"] if gate else [])
    share = {s: MINUTES[s] / sum(MINUTES[t] for t in todo) for s in todo}
    done, at = {"align": aligned} if aligned else {}, 0.0

    def step(stage: str, work) -> str:
        nonlocal at
        name, started = state.finished(settings, stage), time.monotonic()
        if name is None:
            if progress:
                progress(at, f"{stage}: starting ({todo.index(stage) + 1} of {len(todo)})")
            name = work(scaled(progress, at, at + share[stage]))
            state.record(stage, name, round((time.monotonic() - started) / 60, 1))
        done.update({stage: name, f"{stage}_minutes": state.done.get(f"{stage}_minutes")})
        at += share[stage]
        return name

    if not aligned:
        from training.stages.align import AlignConfig, align

        step("align", lambda p: align(settings, AlignConfig(items=align_items), progress=p)["version"])
    parent = done["align"]
    for stage in STAGES:
        cfg = configs[stage] if stage == "teacher" else dataclasses.replace(configs[stage], parent=parent)
        try:
            name = step(stage, lambda p, stage=stage, cfg=cfg: run_stage(settings, stage, cfg, p))
        except NoPairs as exc:  # no sample had a clear gap: KD's version is the chain's last
            done["dpo"], at = f"none ({exc})", at + share[stage]
            continue
        if stage != "teacher":
            parent = name
    if gate:
        from training.refresh import serve_if_better

        with session_scope(settings.db_url) as session:
            served = registry.served(session, "student")
            served = served.name if served else None
        if progress:
            progress(at, f"gate: {parent} against {served or 'the lead baseline'} on the held-out items")
        promoted, reason, _ = serve_if_better(settings, parent, served, gate, scaled(progress, at, 1.0),
                                              actor="train all")
        done |= {"candidate": parent, "promoted": promoted, "message": reason}
    state.close()
    return done
