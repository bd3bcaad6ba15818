"""The model registry, for the shells: list versions, promote, roll back, import a checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

from models.serving import (
    served_version,
)
from models.student import StudentError
from storage import registry
from storage.db import ensure_schema, session_scope
from storage.settings import Settings


def student_served(settings: Settings) -> bool:
    return bool(settings.student) or served_version(settings, "student") is not None


def list_versions(settings: Settings, kind: str | None = None) -> list[dict]:
    ensure_schema(settings.db_url)
    with session_scope(settings.db_url) as session:
        every = registry.versions(session)
        names = {v.id: v.name for v in every}
        return [{"name": v.name, "kind": v.kind, "stage": v.stage, "status": v.status,
                 "parent": names.get(v.parent_id), "metrics": v.metrics, "created_at": v.created_at.isoformat()}
                for v in every if kind in (None, v.kind)]


def promote_version(settings: Settings, version: str, reason: str = "", actor: str = "") -> str:
    ensure_schema(settings.db_url)
    with session_scope(settings.db_url) as session:
        row = registry.get(session, version)
        registry.promote(session, row, reason, actor)
        return f"serving {row.kind} {row.name}"


def rollback_version(settings: Settings, kind: str, reason: str = "", actor: str = "") -> str:
    ensure_schema(settings.db_url)
    with session_scope(settings.db_url) as session:
        registry.rollback(session, kind, reason, actor)
        return f"serving {kind} {registry.served(session, kind).name}"


def import_checkpoint(settings: Settings, checkpoint: Path, stage: str) -> str:
    """Registers a student checkpoint made outside the stages (an alignment run before the registry existed)."""
    manifest = checkpoint / "manifest.json"
    if not manifest.exists():
        raise StudentError(f"{checkpoint} is not a student checkpoint (no manifest.json)")
    ensure_schema(settings.db_url)
    with session_scope(settings.db_url) as session:
        registry.register(session, name=checkpoint.name, kind="student", stage=stage, checkpoint=checkpoint.resolve(),
                          bases=json.loads(manifest.read_text())["bases"])
    return checkpoint.name


