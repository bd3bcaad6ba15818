"""The alignment report: held-out WERs, examples and the loss curves of both phases."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from bench.report import write_report


def markdown(report: dict) -> str:
    cfg, wer, ctc_wer = report["config"], 100 * report["wer"], 100 * report["ctc_wer"]
    beam_wer, greedy_wer = 100 * report["beam_wer"], 100 * report["greedy_wer"]
    lines = [f"# Student alignment {datetime.now():%Y-%m-%d}", "",
             f"{cfg['items']} TTS utterances; {report['train_minutes']} min of training in all: "
             f"{report['ctc_steps']} CTC steps of the projector (batch {cfg['ctc_batch_size']}, lr {cfg['ctc_lr']}, "
             f"{report['ctc_steps']} steps), then {report['steps']} steps of projector + LoRA (batch {cfg['batch_size']}, "
             f"lr {cfg['lr']}, CTC weight {cfg['ctc_weight']}). The whole command, with model loading, "
             f"speech synthesis and encoding (unless cached) and evaluation: {report['wall_minutes']} min.", "",
             f"Held-out WER on {cfg['held_out']} utterances of other texts: **{wer:.1f}%**, the best of "
             f"{cfg['beams']} beams by LM + {cfg['ctc_rescore']} x CTC log-likelihood. The LM's own best beam: "
             f"{beam_wer:.1f}%; greedy: {greedy_wer:.1f}%; the projector's CTC reading alone, after phase 1: "
             f"{ctc_wer:.1f}%.", "",
             f"Checkpoint: `{report['checkpoint']}`", "",
             "| reference | student | CTC after phase 1 |", "|---|---|---|"]
    lines += [f"| {e['reference']} | {e['student'].replace(chr(10), ' ')} | {e['ctc']} |" for e in report["examples"]]
    return "\n".join(lines) + "\n"


def align_report(report: dict, out_dir: Path, name: str = "align") -> Path:
    """bench/results/<date>-<name>.{json,md,png}."""

    def draw(plt):
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        for ax, key, label in ((axes[0], "ctc_losses", "phase 1: CTC loss per token"),
                               (axes[1], "losses", "phase 2: transcript NLL per token")):
            steps, values = [row[0] for row in report[key]], [row[1] for row in report[key]]
            ax.plot(steps, values, linewidth=0.6, alpha=0.5, label="batch")
            window = 25
            if len(values) > window:
                smooth = [sum(values[i - window : i]) / window for i in range(window, len(values) + 1)]
                ax.plot(steps[window - 1 :], smooth, label=f"mean of {window}")
            ax.set_xlabel("step")
            ax.set_title(label)
            ax.legend()
        fig.suptitle(f"alignment: held-out WER {100 * report['wer']:.1f}% (CTC alone {100 * report['ctc_wer']:.1f}%)")
        return fig

    return write_report(out_dir / f"{datetime.now():%Y-%m-%d}-{name}", report, markdown(report), draw)
