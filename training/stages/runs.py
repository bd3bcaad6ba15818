"""What every training stage shares: a loop with a budget in steps that saves and resumes, and the version it registers.

A run's budget is a number of steps (or epochs), so the same command trains the same model on an idle
machine and on a busy one; `minutes` is only a cap, and the run's record says when it cut a run short.

A run is named by what it trains (stage, config, parent version, data): `speechsum train sft`
started again after a crash or a `kill -9` finds its own folder under <data dir>/runs and goes on
from the last save (weights being trained, optimizer, step, RNG, loss curve, elapsed time). Saves
are atomic (written aside, then renamed), every `save_minutes`. A finished run writes its
checkpoint (also atomically) and registers it as a *candidate*: a run never changes what is served.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from models.progress import Progress
from models.shipped import code_commit
from storage import registry
from storage.db import ensure_schema, session_scope
from storage.settings import Settings
from training.config import Checked, option

log = logging.getLogger(__name__)
LossFn = Callable[[list[int]], tuple[torch.Tensor, dict]]


@dataclass
class LoopConfig(Checked):
    """The loop's knobs, shared by the stages' configs (each stage sets its own defaults)."""

    steps: int = option(0, "optimizer steps: the budget, and the schedule decays over it (0: `epochs` passes)", ge=0)
    minutes: float | None = option(None, "a cap on training time in minutes (none by default); the run's record "
                                         "says whether it cut the run short", gt=0)
    batch_size: int = option(4, "examples per optimizer step", ge=1)
    lr: float = option(1e-4, "peak learning rate (AdamW)", gt=0)
    warmup_steps: int = option(10, "steps of linear warm-up", ge=1)
    epochs: int = option(3, "passes over the data, when `steps` is 0", ge=1)
    weight_decay: float = option(0.0, "AdamW's weight decay", ge=0)
    save_minutes: float = option(3.0, "minutes between resumable saves (0: after every step)", ge=0)
    seed: int = option(0, "seed of the batches, sampling and the items' order (the held-out split is fixed)")


def lr_at(step: int, total: int, cfg) -> float:
    """Linear warm-up, then cosine decay to a tenth (`cfg` has `lr` and `warmup_steps`)."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps))
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def length_batches(lengths: list[int], batch_size: int, rng: random.Random, pool: int = 16) -> list[list[int]]:
    """One epoch of batches of similar length, in random order.

    Batches are left-padded to their longest example, and a CPU step costs in proportion to the
    padded size, so grouping similar lengths (within random pools of `pool` batches) buys steps."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    batches = []
    for start in range(0, len(order), batch_size * pool):
        chunk = sorted(order[start : start + batch_size * pool], key=lengths.__getitem__)
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


class DivergedError(RuntimeError):
    """The loss stayed non-finite: the run stops instead of registering a broken model."""


MAX_BAD_STEPS = 10  # consecutive steps with a non-finite loss or gradient before a run gives up


def update(optimizer: torch.optim.Optimizer, params: list[nn.Parameter], loss: torch.Tensor, lr: float) -> bool:
    """One optimizer step at `lr` on `loss`, with gradients clipped to norm 1 (both phases). A batch
    whose loss or gradient is not finite (bf16 overflow on a GPU) is skipped, not stepped: one NaN
    step would make every weight NaN. Returns whether it stepped."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.zero_grad()
    if not torch.isfinite(loss):
        return False
    loss.backward()
    if not torch.isfinite(torch.nn.utils.clip_grad_norm_(params, 1.0)):
        optimizer.zero_grad()
        return False
    optimizer.step()
    return True


def config_dict(cfg) -> dict:
    return json.loads(json.dumps(asdict(cfg), default=str))


class Run:
    """A run's folder: <data dir>/runs/<stage>-<digest of stage, config, parent and data>."""

    def __init__(self, data_dir: Path, stage: str, config: dict, parent: str | None, data: str):
        key = hashlib.sha256(json.dumps([stage, config, parent, data], sort_keys=True).encode()).hexdigest()[:12]
        self.stage, self.dir = stage, data_dir / "runs" / f"{stage}-{key}"
        self.meta = {"stage": stage, "config": config, "parent": parent, "data_hash": data}
        self.commit = code_commit()  # the code that trains: read at the start, as a long run's tree may move on
        self.state_path = self.dir / "state.pt"

    def load(self) -> dict | None:
        return torch.load(self.state_path, weights_only=False) if self.state_path.exists() else None

    def save(self, state: dict) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        partial = self.dir / "state.pt.partial"
        torch.save(state, partial)
        os.replace(partial, self.state_path)  # a kill leaves the old save or the new one, never half of one

    def finish(self, report: dict) -> None:
        """The run is registered: keep its report, drop the resumable state (a rerun starts afresh)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "report.json").write_text(json.dumps(report, indent=1, default=str))
        self.state_path.unlink(missing_ok=True)


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().cpu().clone() for n, p in model.named_parameters() if p.requires_grad}


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def fit(run: Run, model: nn.Module, loss_fn: LossFn, lengths: list[int], cfg: LoopConfig, desc: str,
        progress: Progress | None = None) -> dict:
    """Trains `model`'s trainable parameters on `loss_fn(batch of example indices)` for `cfg.steps` steps
    (or `cfg.epochs` passes), stopping early only at the `cfg.minutes` cap, so a busy machine trains
    the same model, later.

    Batches group examples of similar `lengths`; each epoch's order depends only on the seed and the
    epoch, so a resumed run sees the same batches it would have seen. Returns the loss curve:
    (step, loss, seconds, extras) rows, the steps done and planned, whether the cap cut the run short,
    the step it resumed from, the minutes and the steps per minute."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    named = dict(model.named_parameters())
    per_epoch = max(1, -(-len(lengths) // cfg.batch_size))
    step, elapsed, curve, total = 0, 0.0, [], cfg.steps or per_epoch * cfg.epochs
    state = run.load()
    if state is not None:
        with torch.no_grad():
            for name, value in state["weights"].items():
                named[name].copy_(value)
        optimizer.load_state_dict(state["optimizer"])
        _set_rng_state(state["rng"])
        step, elapsed, curve = state["step"], state["elapsed"], state["curve"]
    resumed_from, bad, skipped = step, 0, 0

    def save() -> None:
        run.save({"weights": trainable_state(model), "optimizer": optimizer.state_dict(), "rng": _rng_state(),
                  "step": step, "elapsed": time.monotonic() - started, "curve": curve, "total": total} | run.meta)

    cap_s = cfg.minutes * 60 if cfg.minutes else math.inf
    started, last_save = time.monotonic() - elapsed, time.monotonic()
    batches = length_batches(lengths, cfg.batch_size, random.Random(cfg.seed * 1000 + step // per_epoch))
    model.train()
    bar = tqdm(total=total, initial=step, desc=desc, unit="step")
    while step < total and time.monotonic() - started < cap_s:
        if step % per_epoch == 0:
            batches = length_batches(lengths, cfg.batch_size, random.Random(cfg.seed * 1000 + step // per_epoch))
        loss, extras = loss_fn(batches[step % per_epoch])
        if update(optimizer, params, loss, lr_at(step, total, cfg)):
            bad = 0
        else:
            bad, skipped = bad + 1, skipped + 1
            if bad >= MAX_BAD_STEPS:
                save()
                raise DivergedError(f"{desc}: the last {bad} steps had a non-finite loss or gradient (step {step}); "
                                    "nothing was registered: try a lower learning rate or another parent")
        curve.append((step, round(loss.item(), 4), round(time.monotonic() - started, 1), extras))
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3f}")
        step += 1
        if progress:
            progress(min(1.0, max(step / total, (time.monotonic() - started) / cap_s)), f"{desc}: step {step}")
        if time.monotonic() - last_save >= cfg.save_minutes * 60:
            save()
            last_save = time.monotonic()
    bar.close()
    save()
    model.eval()
    minutes = (time.monotonic() - started) / 60
    pace = round((step - resumed_from) / max(minutes - elapsed / 60, 1e-9), 2)
    log.info("%s: %d of %d steps, %.1f min, %.2f steps per minute", desc, step, total, minutes, pace)
    if step < total:
        log.warning("%s: the %s-minute cap stopped the run at step %d of %d", desc, cfg.minutes, step, total)
    return {"steps": step, "planned_steps": total, "capped": step < total, "resumed_from": resumed_from,
            "curve": curve, "skipped_steps": skipped, "train_minutes": round(minutes, 1),
            "steps_per_minute": pace}


def version_name(stage: str, folder: Path) -> str:
    """<stage>-<date>-<time>, with "-2", "-3", ... when a run of the stage finished in the same second."""
    name = base = f"{stage}-{datetime.now():%Y%m%d-%H%M%S}"
    n = 1
    while (folder / name).exists():
        n += 1
        name = f"{base}-{n}"
    return name


def save_atomically(write: Callable[[Path], object], target: Path) -> Path:
    """Writes a checkpoint folder (or a file) aside and renames it into place: a crash never leaves
    half of one."""
    partial = target.with_name(f".{target.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    write(partial)
    os.replace(partial, target)
    return target


def register_version(settings: Settings, *, name: str, kind: str, stage: str, checkpoint: Path,
                     parent: str | None, bases: dict, config: dict, data: str, metrics: dict) -> str:
    """Registers a finished run's checkpoint as a candidate; returns its name."""
    ensure_schema(settings.db_url)
    with session_scope(settings.db_url) as session:
        parent_row = registry.get(session, parent) if parent else None
        registry.register(session, name=name, kind=kind, stage=stage, checkpoint=checkpoint, parent=parent_row,
                          bases=bases, config=config, data_hash=data, metrics=metrics)
    return name


def tail_mean(curve: list, n: int = 20) -> float | None:
    """The mean loss of the last `n` steps: a steadier "final loss" than the last batch's."""
    tail = [row[1] for row in curve[-n:]]
    return round(sum(tail) / len(tail), 4) if tail else None


def finish(settings: Settings, run: Run, *, kind: str, stage: str, write: Callable[[Path], object], bases: dict,
           parent: str | None, cfg, data: str, report: dict, metrics: dict | None = None) -> str:
    """Saves the trained model (atomically), registers it as a candidate version and closes the run."""
    folder = settings.data_dir / ("students" if kind == "student" else "teachers")
    folder.mkdir(parents=True, exist_ok=True)
    name = version_name(stage, folder)
    checkpoint = save_atomically(write, folder / name)
    metrics = {"steps": report["steps"], "planned_steps": report["planned_steps"], "capped": report["capped"],
               "steps_per_minute": report["steps_per_minute"], "resumed_from": report["resumed_from"],
               "train_minutes": report["train_minutes"], "final_loss": tail_mean(report["curve"]),
               "skipped_steps": report.get("skipped_steps", 0),
               "run": str(run.dir), "commit": run.commit} | (metrics or {})
    register_version(settings, name=name, kind=kind, stage=stage, checkpoint=checkpoint, parent=parent, bases=bases,
                     config=config_dict(cfg), data=data, metrics=metrics)
    run.finish(report | {"version": name, "metrics": metrics})
    return name


def resolve_parent(settings: Settings, requested: str | None, kind: str, stage: str) -> tuple[str, str]:
    """(name, checkpoint) of `--from VERSION`, else of the newest version of the stage before."""
    ensure_schema(settings.db_url)
    with session_scope(settings.db_url) as session:
        version = registry.get(session, requested) if requested else registry.latest(session, kind, stage)
        if version is None:
            raise registry.RegistryError(f"there is no {stage} {kind} yet to train from: run "
                                         f"`speechsum train {stage}` first, or pass --from VERSION")
        return version.name, version.checkpoint
