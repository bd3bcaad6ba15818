"""Model versions: register, promote, roll back, and which one is served; one transaction each.

A training run registers its result as a *candidate*; nothing a run does changes what is served.
Only `promote` does: the served version of that kind becomes *retired*, the new one *served*, and a
row is added to the append-only `promotions` log (MLflow's aliases, plus the history they lack).
`rollback` serves again the version that the current one replaced.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.files import sha256_tree
from storage.schema import ModelVersion, Promotion, utcnow

KINDS = ("student", "teacher")


class RegistryError(ValueError):
    """A registry request that cannot be done; the message is meant for the user."""


def register(session: Session, *, name: str, kind: str, stage: str, checkpoint: str | Path,
             parent: ModelVersion | None = None, bases: dict | None = None, config: dict | None = None,
             data_hash: str = "", metrics: dict | None = None, status: str = "candidate") -> ModelVersion:
    if kind not in KINDS:
        raise RegistryError(f"a version's kind is one of {', '.join(KINDS)}, not {kind!r}")
    if status not in ("candidate", "failed"):
        raise RegistryError("a new version is a candidate (or failed); only promote serves one")
    version = ModelVersion(
        name=name, kind=kind, stage=stage, parent_id=parent.id if parent else None, checkpoint=str(checkpoint),
        sha256=sha256_tree(checkpoint) if Path(checkpoint).is_dir() else "", bases=bases or {},
        config=config or {}, data_hash=data_hash, metrics=metrics or {}, status=status,
    )
    session.add(version)
    session.flush()
    return version


def find(session: Session, name: str) -> ModelVersion | None:
    return session.scalar(select(ModelVersion).where(ModelVersion.name == name))


def get(session: Session, name_or_id: str | int) -> ModelVersion:
    key = str(name_or_id)
    version = session.scalar(select(ModelVersion).where(ModelVersion.name == key))
    if version is None and key.isdigit():
        version = session.get(ModelVersion, int(key))
    if version is None:
        raise RegistryError(f"no model version {name_or_id!r} (see `speechsum models list`)")
    return version


def served(session: Session, kind: str) -> ModelVersion | None:
    return session.scalar(select(ModelVersion).where(ModelVersion.kind == kind, ModelVersion.status == "served"))


def latest(session: Session, kind: str, stage: str | None = None, llm: str | None = None) -> ModelVersion | None:
    """The newest usable (not failed) version of a kind, optionally of one stage, or trained on the LM
    `llm` (its recorded base version: a teacher's adapter fits no other LM)."""
    query = select(ModelVersion).where(ModelVersion.kind == kind, ModelVersion.status != "failed")
    if stage:
        query = query.where(ModelVersion.stage == stage)
    newest_first = session.scalars(query.order_by(ModelVersion.id.desc()))
    return next((v for v in newest_first if llm is None or (v.bases or {}).get("llm") == llm), None)


def versions(session: Session, kind: str | None = None) -> list[ModelVersion]:
    query = select(ModelVersion).order_by(ModelVersion.id)
    return list(session.scalars(query.where(ModelVersion.kind == kind) if kind else query))


def _serve(session: Session, version: ModelVersion, action: str, reason: str, actor: str) -> Promotion:
    if version.status == "failed":
        raise RegistryError(f"{version.name} failed in training and cannot be served")
    if not Path(version.checkpoint).is_dir():
        raise RegistryError(f"{version.name}'s checkpoint {version.checkpoint} is missing")
    if version.sha256 and sha256_tree(version.checkpoint) != version.sha256:
        raise RegistryError(f"{version.name}'s checkpoint at {version.checkpoint} changed since it was registered")
    current = served(session, version.kind)
    if current is not None and current.id == version.id:
        raise RegistryError(f"{version.name} is already served")
    if current is not None:
        current.status, current.updated_at = "retired", utcnow()
        session.flush()  # one served version per kind at every moment of the transaction
    version.status, version.updated_at = "served", utcnow()
    row = Promotion(kind=version.kind, version_id=version.id, previous_id=current.id if current else None,
                    action=action, reason=reason, actor=actor)
    session.add(row)
    session.flush()
    return row


def promote(session: Session, version: ModelVersion, reason: str = "", actor: str = "") -> Promotion:
    """Serves `version` in place of its kind's served one (which is retired)."""
    return _serve(session, version, "promote", reason, actor)


def rollback(session: Session, kind: str, reason: str = "", actor: str = "") -> Promotion:
    """Serves again the version that the served one replaced when it was promoted."""
    current = served(session, kind)
    if current is None:
        raise RegistryError(f"no {kind} is served, so there is nothing to roll back")
    made = session.scalar(select(Promotion).where(Promotion.version_id == current.id, Promotion.action == "promote")
                          .order_by(Promotion.id.desc()).limit(1))
    if made is None or made.previous_id is None:
        raise RegistryError(f"{current.name} replaced no earlier {kind}: there is nothing to roll back to")
    return _serve(session, session.get(ModelVersion, made.previous_id), "rollback", reason, actor)


def history(session: Session, kind: str | None = None) -> list[Promotion]:
    query = select(Promotion).order_by(Promotion.id)
    return list(session.scalars(query.where(Promotion.kind == kind) if kind else query))
