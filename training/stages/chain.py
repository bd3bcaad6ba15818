"""The stages in order: alignment (if none yet), teacher fine-tuning, SFT, KD, DPO, each from the last.

Every stage is a plain function with a config (training/{align,teacher,sft,kd,dpo}.py); the CLI
and the workers call these. Each stage registers a candidate and changes nothing that is served.
"""

from __future__ import annotations

import dataclasses
import time

from storage.settings import Settings
from training.config import configure

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
    items, _ = student_items(settings, student, max_words, 0, seed, SFTConfig().meetings)
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


def train_all(settings: Settings, configs: dict, align_items: int = 2000) -> dict[str, str]:
    """Runs every stage after the last (alignment only if no aligned student exists); returns
    {stage: version}, with each stage's minutes under "<stage>_minutes"."""
    from storage import registry
    from storage.db import ensure_schema, session_scope

    ensure_schema(settings.db_url)
    with session_scope(settings.db_url) as session:
        aligned = registry.latest(session, "student", "align")
        done = {"align": aligned.name} if aligned else {}
    if not aligned:
        from training.stages.align import AlignConfig, align

        started = time.monotonic()
        done["align"] = align(settings, AlignConfig(items=align_items))["version"]
        done["align_minutes"] = round((time.monotonic() - started) / 60, 1)
    parent = done["align"]
    for stage in STAGES:
        cfg = configs[stage]
        if stage != "teacher":
            cfg = dataclasses.replace(cfg, parent=parent)
        started = time.monotonic()
        done[stage] = run_stage(settings, stage, cfg)
        done[f"{stage}_minutes"] = round((time.monotonic() - started) / 60, 1)
        if stage != "teacher":
            parent = done[stage]
    return done
