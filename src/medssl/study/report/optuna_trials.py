"""The report's section on an Optuna search (`hydra/sweeper=optuna_search`): every trial with
its state, objective value, parameters and job folder, the best one in bold, and two figures,
the optimisation history (Optuna's own matplotlib plot) and the parameters' importances.

The study is read from `<sweep folder>/optuna.db`; a folder without one gets no section. The
trials are also the report's variants: each names its searched keys (medssl.study.report.variants).
"""

from __future__ import annotations

import io
import logging
import math
import warnings
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure as MplFigure

from medssl.study.optuna_search import STUDY_FILE
from medssl.study.report.cells import Study
from medssl.study.report.collect import Run
from medssl.study.report.document import Block, Figure, Heading, Paragraph, Table

log = logging.getLogger(__name__)


def optuna_blocks(study: Study) -> list[Block]:
    """The section for every Optuna study stored in the folder (none without `optuna.db`)."""
    path = Path(study.folder) / STUDY_FILE
    if not path.is_file():
        return []
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = f"sqlite:///{path.resolve()}"
    blocks: list[Block] = []
    for summary in optuna.get_all_study_summaries(storage=storage):
        search = optuna.load_study(study_name=summary.study_name, storage=storage)
        blocks += _study_blocks(search, study)
    return blocks


def _study_blocks(search, study: Study) -> list[Block]:
    name = search.study_name
    objective = _objective_name(study.runs)
    trials = search.trials
    best = _best_trial(search)
    blocks: list[Block] = [
        Heading(f"Optuna search `{name}`", 2),
        Paragraph(_summary_text(search, objective, best, study.runs)),
        trials_table(search, study.runs, objective),
    ]
    suffix = "" if name == "train" else f"_{name}"
    history = optimisation_history_png(search, objective)
    if history is not None:
        caption = f"Optuna study {name}: {objective} of each trial and the best so far"
        blocks.append(Figure(f"optuna_history{suffix}.png", history, caption))
    importances = importances_png(search)
    if importances is not None:
        caption = f"Optuna study {name}: importance of each parameter for {objective}"
        blocks.append(Figure(f"optuna_importances{suffix}.png", importances, caption))
    elif len([t for t in trials if t.value is not None]) < 2:
        blocks.append(Paragraph("Parameter importances need at least two finished trials."))
    return blocks


def _summary_text(search, objective: str, best, runs: list[Run]) -> str:
    states = [t.state.name for t in search.trials]
    counts = ", ".join(f"{states.count(s)} {s.lower()}" for s in sorted(set(states)))
    direction = search.direction.name.lower()
    text = f"{len(states)} trials ({counts}); objective: {objective}, {direction}d."
    if best is None:
        return text + " No trial has finished yet."
    run = trial_run(best, runs)
    where = f", folder {run.folder}" if run is not None else ""
    params = ", ".join(f"{k}={_shown(v)}" for k, v in best.params.items())
    return text + f" Best: trial {best.number}, {objective} = {best.value:.4f} ({params}{where})."


def trials_table(search, runs: list[Run], objective: str) -> Table:
    """One row per trial in order; the best trial's row in bold."""
    names = sorted({name for t in search.trials for name in t.params})
    table = Table(header=["trial", "state", objective, *names, "folder"], rows=[])
    best = _best_trial(search)
    for row, trial in enumerate(search.trials):
        run = trial_run(trial, runs)
        value = "–" if trial.value is None else f"{trial.value:.4f}"
        params = [_shown(trial.params[n]) if n in trial.params else "–" for n in names]
        table.rows.append(
            [
                str(trial.number),
                trial.state.name.lower(),
                value,
                *params,
                run.folder if run else "–",
            ]
        )
        if best is not None and trial.number == best.number:
            table.bold |= {(row, column) for column in range(len(table.header))}
    table.notes.append("Bold: the best trial. Each trial's job folder holds its results.json.")
    return table


def trial_run(trial, runs: list[Run]) -> Run | None:
    """The job of a trial: the run whose command line holds every override the trial set."""
    wanted = {f"{name}={value}" for name, value in trial.params.items()}
    return next((run for run in runs if wanted <= set(run.overrides)), None)


def optimisation_history_png(search, objective: str) -> bytes | None:
    """Optuna's optimisation-history plot (matplotlib backend) as PNG bytes."""
    if not any(t.value is not None for t in search.trials):
        return None
    import matplotlib
    import matplotlib.pyplot as plt
    from optuna.visualization.matplotlib import plot_optimization_history

    # rc_context: the plot switches pyplot to its own style sheet, for this figure only.
    with matplotlib.rc_context(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # optuna 2.10 marks its matplotlib plots experimental
        axes = plot_optimization_history(search)
        axes.set_ylabel(objective)
        figure = axes.figure
        try:
            figure.set_size_inches(7.5, 4.2)
            return _png(figure)
        finally:
            plt.close(figure)


def importances_png(search) -> bytes | None:
    """Each parameter's importance (a random forest's impurity decrease, Optuna's
    MeanDecreaseImpurity evaluator), drawn as bars; None with fewer than two finished trials.
    Optuna 2.10's own importance plot and its default fANOVA evaluator fail on the numpy and
    matplotlib versions medssl runs with."""
    from optuna.importance import MeanDecreaseImpurityImportanceEvaluator, get_param_importances

    try:
        importances = get_param_importances(
            search, evaluator=MeanDecreaseImpurityImportanceEvaluator(seed=0)
        )
    except (ValueError, RuntimeError) as error:  # too few trials, or nothing varied
        log.info("No parameter importances for %s: %s", search.study_name, error)
        return None
    if not importances:
        return None
    names = list(importances)[::-1]
    fig = MplFigure(figsize=(7.5, 1.2 + 0.45 * len(names)), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.barh(names, [importances[n] for n in names], color="#1f77b4")
    ax.set_xlabel("importance (share of the objective's variance the forest explains)")
    ax.set_title(f"Optuna study {search.study_name}: parameter importances")
    ax.grid(True, axis="x", alpha=0.3)
    return _png(fig)


def _best_trial(search):
    if len(search.directions) != 1 or not any(t.value is not None for t in search.trials):
        return None
    return search.best_trial


def _objective_name(runs: list[Run]) -> str:
    """`val/<optimize_metric>` as the jobs' config says, the value train.py reports."""
    for run in runs:
        metric = (run.config or {}).get("optimize_metric")
        if isinstance(metric, str):
            return f"val/{metric}"
    return "objective"


def _shown(value) -> str:
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:.4g}"
    return str(value)


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()
