"""The recipes a tuned study chose on val (medssl.study.tuned_study writes `tuning.json` into
its grid folder): the report states which recipe each method ran with, and the val search that
chose it, before any test number."""

from __future__ import annotations

import json
from pathlib import Path

from medssl.study.report.document import Block, Heading, Table

TUNING_FILE = "tuning.json"


def tuning_blocks(entries: dict) -> list[Block]:
    """A heading and one table row per method: its recipe, the best val score, the trials."""
    table = Table(
        header=["method", "recipe in the grid", "val score of the best trial", "trials (failed)"],
        rows=[],
    )
    for method, entry in entries.items():
        if entry.get("untuned"):
            table.rows.append([method, "as configured (not tuned)", "", ""])
            continue
        recipe = ", ".join(f"`{o}`" for o in entry["overrides"]) or "its defaults"
        table.rows.append(
            [
                method,
                recipe,
                f"{entry['val_metric']} = {entry['val_best']:.3f}",
                f"{entry['trials_finished']} ({entry['trials_failed']})",
            ]
        )
    table.notes.append(
        "Each method ran with the best trial of an Optuna search on val (test unseen), its "
        "values rounded as shown; the search folders hold every trial."
    )
    return [Heading("Recipes chosen on val", 2), table]


def study_tuning_blocks(folder: Path) -> list[Block]:
    """The tuning section of a tuned study's grid folder; nothing for any other sweep."""
    path = Path(folder) / TUNING_FILE
    if not path.is_file():
        return []
    return tuning_blocks(json.loads(path.read_text()))
