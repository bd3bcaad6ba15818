"""The one report writer: bench/results/<date>-<name>.json (everything), .md (the tables) and .png (a plot)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def write_report(stem: Path, report: dict, markdown: str, draw: Callable[[Any], Any] | None = None,
                 dpi: int = 110) -> Path:
    """Writes the three files beside each other; `draw(pyplot)` returns the figure to save, or None for no plot."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(report, indent=1, default=str))
    stem.with_suffix(".md").write_text(markdown)
    if draw is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig = draw(plt)
        if fig is not None:
            fig.tight_layout()
            fig.savefig(stem.with_suffix(".png"), dpi=dpi)
            plt.close(fig)
    return stem


def dated_report(name: str, cfg, rows: list[dict], render: Callable[[dict], str]) -> dict:
    """A benchmark's rows with the date and its config, written to <out_dir>/<date>-<name>.{json,md}."""
    import dataclasses
    from datetime import date

    report = {"date": date.today().isoformat(),
              "config": dataclasses.asdict(cfg) | {"out_dir": str(cfg.out_dir)}, "rows": rows}
    write_report(cfg.out_dir / f"{report['date']}-{name}", report, render(report))
    return report


def table(header: list[str], rows: list[list]) -> list[str]:
    """A Markdown table's lines."""
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(str(cell) for cell in row) + " |" for row in rows)]
