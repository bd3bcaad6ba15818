"""The stages in order: alignment (if none yet), teacher fine-tuning, SFT, KD, DPO, each from the last.

Every stage is a plain function with a config (training/{align,teacher,sft,kd,dpo}.py); the CLI
and the workers call these. Each stage registers a candidate and changes nothing that is served.
"""

from __future__ import annotations

import dataclasses
import time

from storage import registry
from storage.config import Settings
from storage.db import ensure_schema, session_scope


def run_stage(settings: Settings, stage: str, cfg, progress=None) -> str:
    from training.dpo import dpo
    from training.kd import kd
    from training.sft import sft
    from training.teacher import finetune_teacher

    return {"teacher": finetune_teacher, "sft": sft, "kd": kd, "dpo": dpo}[stage](settings, cfg, progress)


def train_all(settings: Settings, configs: dict, align_items: int = 2000) -> dict[str, str]:
    """Runs every stage after the last (alignment only if no aligned student exists); returns
    {stage: version}, with each stage's minutes under "<stage>_minutes"."""
    ensure_schema(settings.db_url)
    with session_scope(settings.db_url) as session:
        aligned = registry.latest(session, "student", "align")
        done = {"align": aligned.name} if aligned else {}
    if not aligned:
        from training.align import AlignConfig, align

        started = time.monotonic()
        done["align"] = align(settings, AlignConfig(items=align_items))["version"]
        done["align_minutes"] = round((time.monotonic() - started) / 60, 1)
    parent = done["align"]
    for stage in ("teacher", "sft", "kd", "dpo"):
        cfg = configs[stage]
        if stage != "teacher":
            cfg = dataclasses.replace(cfg, parent=parent)
        started = time.monotonic()
        done[stage] = run_stage(settings, stage, cfg)
        done[f"{stage}_minutes"] = round((time.monotonic() - started) / 60, 1)
        if stage != "teacher":
            parent = done[stage]
    return done
