"""`make bench`: every system on the default subset plus ASR word error rate, as JSON, a table, a plot.

Results go to bench/results/<date>-<name>.{json,md,png}. The human references themselves get a
row too: their hallucination rate is the proxy's floor (people paraphrase and name speakers'
roles, which the recording never says), so a system is judged against it rather than zero.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

import numpy as np

from bench.asr import asr_word_error_rate, human_speech
from bench.report import RESULTS, write_report
from storage.settings import Settings
from training.data.items import DEV_FILE, EvalItem, load_items, split
from training.data.speech import eval_wavs
from training.evaluate import LM_SYSTEMS, SystemResult, evaluate
from training.metrics import hallucination


@dataclass
class BenchConfig:
    data: Path | None = None  # the QMSum items; None: <SPEECHSUM_SHARED_DATA>/qmsum_dev.jsonl
    part: str = "held_out"
    items: int = 50
    seed: int = 0
    systems: tuple[str, ...] = LM_SYSTEMS
    asr_models: tuple[str, ...] = ("tiny.en", "base")
    name: str = "default"
    out_dir: Path = RESULTS


def with_data(settings: Settings, cfg: BenchConfig) -> BenchConfig:
    """The config with its items' file resolved (the settings' shared data unless one was given)."""
    return cfg if cfg.data else dataclasses.replace(cfg, data=settings.shared_data / DEV_FILE)


def eval_subset(settings: Settings, cfg: BenchConfig) -> list[EvalItem]:
    items = load_items(with_data(settings, cfg).data)
    return split(items, cfg.seed)[cfg.part][: cfg.items]


def human_row(items: list[EvalItem], summarize_only: bool) -> dict:
    chosen = [i for i in items if i.is_summarize_query or not summarize_only]
    rates = [hallucination(i.reference, i.spoken_text).rate for i in chosen]
    return {"system": "human reference", "model_version": "", "items": len(chosen),
            "hallucination": float(np.mean(rates)) if rates else 0.0,
            "words": float(np.mean([len(i.reference.split()) for i in chosen])) if chosen else 0.0}


def run(settings: Settings, cfg: BenchConfig) -> dict:
    cfg = with_data(settings, cfg)
    items = eval_subset(settings, cfg)
    audio = eval_wavs(items, settings.data_dir)
    results: list[SystemResult] = [evaluate(settings, system, items, audio) for system in cfg.systems]
    rows = {
        subset: [human_row(items, subset == "summarize"), *(r.row(subset == "summarize") for r in results)]
        for subset in ("all", "summarize")
    }
    pairs = human_speech() if cfg.asr_models else []
    asr = [asr_word_error_rate(settings.model_copy(update={"asr_model": m}), pairs) for m in cfg.asr_models]
    report = {"date": date.today().isoformat(), "config": {k: str(v) for k, v in asdict(cfg).items()},
              "audio_minutes": sum(i.audio_seconds for i in results[0].items) / 60 if results else 0.0,
              "rows": rows, "asr": asr, "items": {r.system: [asdict(i) for i in r.items] for r in results}}
    write(report, cfg)
    return report


def _cell(row: dict, key: str, fmt: str) -> str:
    return format(row[key], fmt) if key in row else "–"


def markdown(report: dict) -> str:
    cfg = report["config"]
    lines = [f"# Benchmark {report['date']} ({cfg['name']})", "",
             f"{cfg['part']} part of {Path(cfg['data']).name}, seed {cfg['seed']}, greedy decoding; "
             f"{report['audio_minutes']:.1f} min of TTS audio. ROUGE is F1 ×100 against the human answer; "
             "hallucination is the share of summary numbers and content words the transcript lacks.", ""]
    for subset, title in (("all", "All queries"), ("summarize", "\"Summarize ...\" queries")):
        lines += [f"## {title}", "",
                  "| system | items | ROUGE-1 | ROUGE-2 | ROUGE-L | hallucination | words | generated: ROUGE-L | "
                  "generated: hallucination | judge | s / audio min | peak MB |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for row in report["rows"][subset]:
            rouge = [format(100 * row[k], ".1f") if k in row else "–" for k in ("rouge1", "rouge2", "rougeL")]
            raw = [format(100 * row[k], ".1f") if k in row else "–" for k in ("raw_rougeL", "raw_hallucination")]
            lines.append(f"| {row['system']} | {row['items']} | {' | '.join(rouge)} | "
                         f"{100 * row['hallucination']:.1f}% | {row['words']:.0f} | {raw[0]} | {raw[1]}"
                         f"{'%' if raw[1] != '–' else ''} | {_cell(row, 'judge', '.1f')} | "
                         f"{_cell(row, 's_per_audio_min', '.1f')} | {_cell(row, 'peak_mb', '.0f')} |")
        lines.append("")
    if report["asr"]:
        lines += ["## ASR word error rate (pocketsphinx-testdata, real human speech)", "",
                  "| model | clips | WER | real-time factor |", "|---|---|---|---|"]
        lines += [f"| {a['model_version']} | {a['clips']} | {100 * a['wer']:.1f}% | {a['rtf']:.2f} |"
                  for a in report["asr"]]
    return "\n".join(lines) + "\n"


def plot(report: dict, plt):
    """ROUGE-L and hallucination per system (and, once students exist, per training stage)."""
    rows = [r for r in report["rows"]["all"] if "rougeL" in r]
    names = [re.sub(r"-\d{8}-\d{6}", "", r["system"]) for r in rows]  # version names without their time
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(1.8 * len(rows) + 3, 4.5))
    ax.bar(x - 0.2, [100 * r["rougeL"] for r in rows], 0.4, label="ROUGE-L (higher is better)")
    ax.bar(x + 0.2, [100 * r["hallucination"] for r in rows], 0.4, label="hallucination % (lower is better)")
    human = next(r for r in report["rows"]["all"] if r["system"] == "human reference")
    ax.axhline(100 * human["hallucination"], color="grey", linestyle="--", linewidth=1,
               label="hallucination % of the human answers")
    ax.set_xticks(x, names, rotation=25, ha="right", fontsize=8)
    ax.set_title(f"speechsum benchmark {report['date']}: systems and stages")
    ax.legend(fontsize=8, loc="upper right")
    return fig


def write(report: dict, cfg: BenchConfig) -> Path:
    return write_report(cfg.out_dir / f"{report['date']}-{cfg.name}", report, markdown(report),
                        lambda plt: plot(report, plt), dpi=120)


def stage_systems(settings: Settings, items: list[EvalItem]) -> list[str]:
    """The stage table's rows: the lead baseline (N = the human answers' median length), the cascade
    and teacher-on-reference with the raw and the fine-tuned LM, and the newest DPO student's line of
    versions (alignment, +SFT, +KD, +DPO)."""
    from models.sources import llm_version
    from storage import registry
    from storage.db import ensure_schema, session_scope

    ensure_schema(settings.db_url)
    cascade_lm = llm_version(settings.llm_model)
    with session_scope(settings.db_url) as session:
        teacher = registry.latest(session, "teacher", llm=cascade_lm)  # an adapter serves only its own LM
        version, chain = registry.latest(session, "student", "dpo"), []
        while version is not None:
            chain.insert(0, version.name)
            version = session.get(type(version), version.parent_id) if version.parent_id else None
    n = int(np.median([len(i.reference.split()) for i in items]))
    systems = [f"lead:{n}", "cascade:raw", "teacher-on-reference:raw"]
    if teacher:
        systems += [f"cascade:{teacher.name}", f"teacher-on-reference:{teacher.name}"]
    return systems + [f"student:{name}" for name in chain]


def plot_curves(settings: Settings, systems: list[str], path: Path) -> None:
    """Each trained version's loss curve (from its run's report), one panel per stage."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from storage import registry
    from storage.db import session_scope

    names, runs = {system.partition(":")[2] for system in systems}, []
    with session_scope(settings.db_url) as session:
        for version in registry.versions(session):
            report = Path(version.metrics.get("run", "")) / "report.json"
            if version.name in names and "run" in version.metrics and report.exists():
                runs.append((version.stage, version.name, json.loads(report.read_text())["curve"]))
    if not runs:
        return
    fig, axes = plt.subplots(1, len(runs), figsize=(4 * len(runs), 3.5), squeeze=False)
    for ax, (stage, name, curve) in zip(axes[0], runs):
        steps, values = [row[0] for row in curve], [row[1] for row in curve]
        ax.plot(steps, values, linewidth=0.7)
        ax.set_title(f"{stage}: {name}", fontsize=8)
        ax.set_xlabel("step")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_stages(settings: Settings, cfg: BenchConfig) -> dict:
    """`make bench-stages`: every stage's row on the same held-out items, plus each run's loss curve."""
    cfg = with_data(settings, cfg)
    items = eval_subset(settings, cfg)
    cfg = dataclasses.replace(cfg, systems=tuple(stage_systems(settings, items)), asr_models=())
    report = run(settings, cfg)
    plot_curves(settings, list(cfg.systems), cfg.out_dir / f"{report['date']}-{cfg.name}-curves.png")
    return report
