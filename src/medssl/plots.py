"""What every PNG medssl writes shares: matplotlib's Agg backend, one resolution, one way to
save, and labels cut to fit."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

DPI = 120


def short(name: str, width: int = 18) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def save_figure(fig, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path
